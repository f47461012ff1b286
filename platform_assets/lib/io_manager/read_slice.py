"""Reading a slice of a table as Arrow, through ADBC's binary COPY."""

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from platform_assets.lib.row_hash import ROW_HASH_COLUMN
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.schema import table_columns
from platform_assets.lib.tables.table_slice import TableSlice


def read_slice(conn: adbc.Connection, table_slice: TableSlice, include_row_hash: bool) -> pa.Table:
    """The slice's rows as Arrow, read through ADBC's binary COPY (see ``SettingParams``)."""
    cursor = conn.cursor()
    try:
        existing = table_columns(cursor, table_slice.schema, table_slice.table)
        if not existing:
            raise LookupError(
                f"table {table_slice.qualified_name} does not exist: materialise its asset first"
            )
        names = (
            list(table_slice.columns)
            if table_slice.columns
            else [c.name for c in existing if include_row_hash or c.name != ROW_HASH_COLUMN]
        )
        missing = sorted(set(names) - {c.name for c in existing})
        if missing:
            raise LookupError(f"{table_slice.qualified_name} has no column(s) {missing}")
        (setup, values), query = statements.select_slice(
            table_slice, names, {c.name: c.pg_type for c in existing}
        )
        if values:
            cursor.execute(setup, parameters=values)
            cursor.fetchall()
        cursor.execute(query)  # no bind parameters: ADBC streams it as a binary COPY
        return cursor.fetch_arrow_table()
    finally:
        cursor.close()
        conn.rollback()
