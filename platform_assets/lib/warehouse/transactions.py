"""One ADBC transaction as a ``with`` block: commit on success, roll back on any error."""

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
