"""A read-only snapshot of the database for counting: what the checks read their figures from."""

from collections.abc import Iterator
from contextlib import contextmanager

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.tables.schema import table_columns
from platform_assets.lib.tables.table_slice import TableSlice


@contextmanager
def read_only_snapshot(conn: adbc.Connection) -> Iterator[adbc.Cursor]:
    """A cursor in one REPEATABLE READ, READ ONLY transaction, rolled back afterwards: every
    count it makes sees the same committed state, and it can change nothing."""
    cursor = conn.cursor()
    try:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield cursor
    finally:
        cursor.close()
        conn.rollback()


def column_types(cursor: adbc.Cursor, table_slice: TableSlice) -> dict[str, str]:
    """``{column: Postgres type}`` of the slice's table; empty when the table does not exist."""
    return {c.name: c.pg_type for c in table_columns(cursor, table_slice.schema, table_slice.table)}
