"""Only errors a later attempt can fix are classified as transient."""

import psycopg
import pytest

from platform_assets.lib.io_manager.write_request import (
    PartitionWriteError,
    RowsOutsidePartitionError,
)
from platform_assets.lib.warehouse.transient import is_transient


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


def test_a_refused_connection_is_transient_with_either_driver() -> None:
    """Driver errors carry no SQLSTATE: libpq's own words are what mark them (nothing listens
    on port 1 of the loopback)."""
    import adbc_driver_postgresql.dbapi as adbc

    url = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(url)
    assert refused.value.sqlstate is None and is_transient(refused.value)
    with pytest.raises(adbc.OperationalError) as refused_adbc:
        adbc.connect(url)
    assert is_transient(refused_adbc.value)


def test_a_missing_database_is_not_transient(warehouse) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(warehouse.conninfo())
    with pytest.raises(psycopg.OperationalError) as missing:
        psycopg.connect(make_conninfo(**{**params, "dbname": "no_such_database"}))
    assert not is_transient(missing.value)
