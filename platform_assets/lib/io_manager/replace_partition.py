"""``replace_partition``: delete exactly the partitions' rows, in one statement, before the COPY."""

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.io_manager.write_request import partition_key, written_partitions
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.table_slice import TableSlice


def delete_partitions(
    cursor: adbc.Cursor, table_slice: TableSlice, pg_types: dict[str, str]
) -> dict[str, int]:
    """Delete the slice's rows in one statement; return rows deleted per partition."""
    query, params, of_row = statements.delete_slice(table_slice, pg_types)
    cursor.execute(query, parameters=params or None)
    counts = {partition_key(p): 0 for p in written_partitions(table_slice)}
    for *partition, rows in cursor.fetchall():
        counts[of_row.key_of(tuple(partition))] += rows
    return counts
