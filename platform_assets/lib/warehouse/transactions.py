"""ADBC transactions: one as a ``with`` block (commit on success, roll back on any error), and a
rollback after a failure that never hides the failure."""

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import adbc_driver_postgresql.dbapi as adbc


@contextmanager
def transaction(conn: adbc.Connection) -> Iterator[adbc.Cursor]:
    """A cursor whose work commits when the block ends, or rolls back if it raises."""
    cursor = conn.cursor()
    try:
        yield cursor
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()


def roll_back(conn: adbc.Connection) -> None:
    """Roll back after a failure. A connection too broken to roll back is closed by the pool
    anyway (it never goes back after an error); the error that broke it is the one to report."""
    with contextlib.suppress(adbc.Error):
        conn.rollback()
