"""Only errors a later attempt can fix are classified as transient."""

import psycopg
import pytest

from platform_assets.lib.postgres.slice_io import PartitionWriteError, RowsOutsidePartitionError
from platform_assets.lib.postgres.transient import is_transient


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.SerializationFailure(),
        psycopg.errors.DeadlockDetected(),
        psycopg.errors.LockNotAvailable(),
        psycopg.errors.AdminShutdown(),
        psycopg.errors.TooManyConnections(),
    ],
    ids=type,
)
def test_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.NotNullViolation(),
        psycopg.errors.UniqueViolation(),
        psycopg.errors.DivisionByZero(),
        psycopg.errors.QueryCanceled(),  # a statement timeout would most likely time out again
        RowsOutsidePartitionError("bad rows"),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_the_cause_of_a_wrapped_error_counts() -> None:
    try:
        try:
            raise psycopg.errors.DeadlockDetected()
        except psycopg.Error as cause:
            raise PartitionWriteError("write failed") from cause
    except PartitionWriteError as wrapped:
        assert is_transient(wrapped)
