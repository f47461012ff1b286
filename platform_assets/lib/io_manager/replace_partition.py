"""``replace_partition``: delete exactly the partitions' rows, in one statement, before the COPY."""

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.io_manager.partition_rows import assign_partitions
from platform_assets.lib.io_manager.write_request import partition_key, written_partitions
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.table_slice import TableSlice


def delete_partitions(
    cursor: adbc.Cursor, table_slice: TableSlice, pg_types: dict[str, str], bounds: list
) -> dict[str, int]:
    """Delete the slice's rows in one statement; return rows deleted per partition."""
    query, params = statements.delete_slice(table_slice, pg_types)
    cursor.execute(query, parameters=params or None)
    deleted = cursor.fetch_arrow_table()
    counts = {partition_key(p): 0 for p in written_partitions(table_slice)}
    rows = deleted.column("rows").to_pylist()
    if not table_slice.partitions:
        counts[WHOLE_TABLE] = rows[0]
    elif table_slice.partitions[0].window is not None:
        by_start = sorted(range(len(bounds)), key=lambda index: bounds[index][0])
        for bucket, count in zip(deleted.column("bucket").to_pylist(), rows, strict=True):
            counts[table_slice.partitions[by_start[bucket - 1]].key] += count
    else:
        for index, count in zip(assign_partitions(deleted, table_slice, bounds), rows, strict=True):
            counts[table_slice.partitions[index].key] += count
    return counts
