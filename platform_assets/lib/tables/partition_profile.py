"""What a partition of a table holds, counted in the database: key faults and row volumes.

Read by the datasets' asset checks, independently of the code that loaded the rows: the keys are
checked in the stored rows, and the volumes counted from them, never taken from the loader.
"""

from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables import statements
from platform_assets.lib.tables.snapshot import column_types, read_only_snapshot
from platform_assets.lib.tables.table_slice import WHOLE_TABLE, TableSlice


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


def key_faults(
    conn: adbc.Connection, table_slice: TableSlice, key: list[str]
) -> dict[str, KeyFaults]:
    """Repeated and missing keys among the rows of each partition of ``table_slice`` (of the
    whole table, key ``WHOLE_TABLE``, when it names none), in one statement for any number of
    partitions."""
    keys = [p.key for p in table_slice.partitions] or [WHOLE_TABLE]
    faults = dict.fromkeys(keys, KeyFaults(0, 0, 0))
    with read_only_snapshot(conn) as cursor:
        pg_types = column_types(cursor, table_slice)
        if not pg_types:
            return faults
        params = statements.Params()
        of_row = statements.PartitionOfRow(table_slice, pg_types, params)
        query = sql.SQL(
            "SELECT {partition}, sum(n), coalesce(sum(n) FILTER (WHERE n > 1), 0),"
            " coalesce(sum(n) FILTER (WHERE {any_null}), 0)"
            " FROM (SELECT {of_row}, {key}, count(*) AS n FROM {table} WHERE {predicate}"
            " GROUP BY {grouping}, {key}) g GROUP BY {partition}"
        ).format(
            partition=of_row.grouping(),
            grouping=of_row.grouping(),
            any_null=sql.SQL(" OR ").join(
                sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in key
            ),
            of_row=of_row.select(),
            key=statements.names(key),
            table=sql.Identifier(table_slice.schema, table_slice.table),
            predicate=statements.slice_predicate(table_slice, pg_types, params),
        )
        cursor.execute(query.as_string(), parameters=params.values or None)
        for row in cursor.fetchall():
            rows, repeated, nulls = (int(value) for value in row[of_row.width :])
            faults[of_row.key_of(tuple(row[: of_row.width]))] = KeyFaults(rows, repeated, nulls)
    return faults


def partition_row_counts(conn: adbc.Connection, table_slice: TableSlice) -> dict[str, int]:
    """``{partition key: rows stored}`` for every partition of ``table_slice``, in one snapshot
    (0 for a partition without rows, or when the table does not exist yet)."""
    with read_only_snapshot(conn) as cursor:
        return rows_in_partitions(cursor, table_slice, column_types(cursor, table_slice))


def rows_in_partitions(
    cursor: adbc.Cursor, table_slice: TableSlice, pg_types: dict[str, str]
) -> dict[str, int]:
    """How many rows of the slice's table each of its partitions owns (the whole table's, key
    ``WHOLE_TABLE``, when it names none), counted in one ``GROUP BY`` statement; 0 for all when
    the table does not exist (``pg_types`` empty)."""
    counts = dict.fromkeys([p.key for p in table_slice.partitions] or [WHOLE_TABLE], 0)
    if not pg_types:
        return counts
    params = statements.Params()
    of_row = statements.PartitionOfRow(table_slice, pg_types, params)
    query = sql.SQL("SELECT {}, count(*) FROM {} WHERE {} GROUP BY {}").format(
        of_row.select(),
        sql.Identifier(table_slice.schema, table_slice.table),
        statements.slice_predicate(table_slice, pg_types, params),
        of_row.grouping(),
    )
    cursor.execute(query.as_string(), parameters=params.values or None)
    for row in cursor.fetchall():
        counts[of_row.key_of(tuple(row[:-1]))] = int(row[-1])
    return counts
