"""What a partition of a table holds, counted in the database: key faults and row volumes.

Read by the datasets' asset checks, independently of the code that loaded the rows: the keys are
checked in the stored rows, and the volumes counted from them, never taken from the loader.
"""

from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables import statements
from platform_assets.lib.tables.snapshot import column_types, read_only_snapshot
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice


@dataclass(frozen=True)
class KeyFaults:
    """In one partition: rows whose key another row of the partition repeats, and rows with a
    key column missing (both must be 0)."""

    rows: int
    repeated_key_rows: int
    null_key_rows: int

    @property
    def clean(self) -> bool:
        """No repeated and no missing key."""
        return self.repeated_key_rows == 0 and self.null_key_rows == 0


def key_faults(conn: adbc.Connection, table_slice: TableSlice, key: list[str]) -> KeyFaults:
    """Repeated and missing keys among the rows of the single partition in ``table_slice``, or
    of the whole table when it names no partition."""
    with read_only_snapshot(conn) as cursor:
        pg_types = column_types(cursor, table_slice)
        if not pg_types:
            return KeyFaults(0, 0, 0)
        params = statements.Params()
        predicate = (
            statements.partition_predicate(table_slice, table_slice.partitions[0], pg_types, params)
            if table_slice.partitions
            else sql.SQL("TRUE")
        )
        key_names = statements.names(key)
        query = sql.SQL(
            "SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE n > 1), 0),"
            " coalesce(sum(n) FILTER (WHERE {any_null}), 0)"
            " FROM (SELECT {key}, count(*) AS n FROM {table} WHERE {predicate} GROUP BY {key}) g"
        ).format(
            any_null=sql.SQL(" OR ").join(
                sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in key
            ),
            key=key_names,
            table=sql.Identifier(table_slice.schema, table_slice.table),
            predicate=predicate,
        )
        cursor.execute(query.as_string(), parameters=params.values)
        rows, repeated, nulls = (int(value) for value in cursor.fetchone())
        return KeyFaults(rows, repeated, nulls)


def partition_row_counts(conn: adbc.Connection, table_slice: TableSlice) -> dict[str, int]:
    """``{partition key: rows stored}`` for every partition of ``table_slice``, in one snapshot
    (0 for a partition without rows, or when the table does not exist yet)."""
    with read_only_snapshot(conn) as cursor:
        pg_types = column_types(cursor, table_slice)
        if not pg_types:
            return {partition.key: 0 for partition in table_slice.partitions}
        return {
            partition.key: rows_in_partition(cursor, table_slice, partition, pg_types)
            for partition in table_slice.partitions
        }


def rows_in_partition(
    cursor: adbc.Cursor,
    table_slice: TableSlice,
    partition: PartitionSlice,
    pg_types: dict[str, str],
) -> int:
    """How many rows of the slice's (existing) table ``partition`` owns."""
    params = statements.Params()
    predicate = statements.partition_predicate(table_slice, partition, pg_types, params)
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        sql.Identifier(table_slice.schema, table_slice.table), predicate
    )
    cursor.execute(query.as_string(), parameters=params.values)
    return int(cursor.fetchone()[0])
