"""Primary keys that another partition of the table already holds.

A re-delivered record (yesterday's order again in today's file) carries a key the table already
holds in another partition: loading it would violate the primary key and fail the whole
partition. Looking the chunk's keys up first lets the ingestion set exactly those rows aside as
``load`` dead letters that name the partition holding the key. The lookup runs on its own
connection, against committed data; a concurrent load of another partition committing the same
key in between still fails loudly on the key, never silently.
"""

from collections.abc import Callable

import pyarrow as pa
from psycopg import sql

from platform_assets.lib.tables import statements
from platform_assets.lib.tables.schema import table_columns
from platform_assets.lib.tables.table_slice import TableSlice
from platform_assets.lib.warehouse.resource import Warehouse


def keys_elsewhere_lookup(
    warehouse: Warehouse, table_slice: TableSlice, primary_key: list[str]
) -> Callable[[pa.Table], dict[int, str]]:
    """A function giving, for a chunk's rows, ``{row index: partition holding its key}`` for
    each row whose primary key the table already holds outside ``table_slice``'s partitions
    (one, or the several of a range run).

    Nothing is looked up while the table does not exist or holds no row outside the partitions
    (a first load or a backfill into an empty table costs no query).
    """
    partition_column = table_slice.partition_columns[0]
    with warehouse.bulk_connection() as conn:
        cursor = conn.cursor()
        try:
            types = {c.name: c.pg_type for c in table_columns(cursor, *_names(table_slice))}
        finally:
            cursor.close()
    windows = [partition.window for partition in table_slice.partitions]
    if not types or not windows or None in windows:
        return lambda rows: {}
    bounds = [
        bound
        for window in windows
        for bound in statements.window_bounds(window, types[partition_column])  # type: ignore[arg-type]
    ]
    table = sql.Identifier(*_names(table_slice))
    column = sql.Identifier(partition_column)
    inside_one = sql.SQL("(t.{col} >= %s AND t.{col} < %s)").format(col=column)
    outside = sql.SQL("NOT ({})").format(sql.SQL(" OR ").join([inside_one] * len(windows)))
    with warehouse.connection() as conn:
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} t WHERE {})").format(table, outside)
        if not conn.execute(query, bounds).fetchone()[0]:
            return lambda rows: {}
    aliases = [sql.Identifier(f"k{i}") for i in range(len(primary_key))]
    lookup = sql.SQL(
        "SELECT k.i, t.{col}::text FROM unnest({arrays}) WITH ORDINALITY AS k({aliases}, i)"
        " JOIN {table} t ON {matches} WHERE {outside}"
    ).format(
        col=column,
        arrays=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in primary_key),
        aliases=sql.SQL(", ").join(aliases),
        table=table,
        matches=sql.SQL(" AND ").join(
            sql.SQL("t.{} = k.{}::{}").format(sql.Identifier(name), alias, sql.SQL(types[name]))
            for name, alias in zip(primary_key, aliases, strict=True)
        ),
        outside=outside,
    )

    def keys_elsewhere(rows: pa.Table) -> dict[int, str]:
        if not rows.num_rows:
            return {}
        arrays = [rows.column(name).cast(pa.string()).to_pylist() for name in primary_key]
        with warehouse.connection() as conn:
            found = conn.execute(lookup, (*arrays, *bounds)).fetchall()
        return {int(index) - 1: held for index, held in found}

    return keys_elsewhere


def _names(table_slice: TableSlice) -> tuple[str, str]:
    return table_slice.schema, table_slice.table
