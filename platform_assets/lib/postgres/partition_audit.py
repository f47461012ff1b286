"""Does a partition add up? Its accounting, against what the table and the dead-letter queue hold.

Read by the datasets' asset checks: rows read = loaded + dead-lettered in the accounting, the
table really holds the loaded rows, and the queue really holds the unresolved dead letters.
"""

from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.postgres import statements
from platform_assets.lib.postgres.side_writes import (
    ACCOUNTING,
    DEAD_LETTERS,
    PLATFORM_SCHEMA,
    UNRESOLVED,
)
from platform_assets.lib.postgres.slice_io import table_columns
from platform_assets.lib.postgres.table_slice import TableSlice


@dataclass(frozen=True)
class PartitionAudit:
    """One partition's accounting (None when it was never recorded) and the real counts."""

    rows_read: int | None
    rows_loaded: int | None
    rows_dead_lettered: int | None
    rows_in_table: int
    unresolved_dead_letters: int

    @property
    def adds_up(self) -> bool:
        """Recorded, read = loaded + dead-lettered, and both match what is stored."""
        return (
            self.rows_read is not None
            and self.rows_read == self.rows_loaded + self.rows_dead_lettered  # type: ignore[operator]
            and self.rows_loaded == self.rows_in_table
            and self.rows_dead_lettered == self.unresolved_dead_letters
        )

    @property
    def dead_letter_ratio(self) -> float:
        """Share of the rows read that were dead-lettered (0 for an empty partition)."""
        return (self.rows_dead_lettered or 0) / self.rows_read if self.rows_read else 0.0


def _scalar(cursor: adbc.Cursor, query: str, params: list[object]) -> object:
    cursor.execute(query, parameters=params)
    row = cursor.fetchone()
    return None if row is None else row[0]


def audit_partition(
    conn: adbc.Connection, asset_key: str, table_slice: TableSlice
) -> PartitionAudit:
    """The audit of the single partition in ``table_slice``, in one snapshot."""
    (partition,) = table_slice.partitions
    cursor = conn.cursor()
    try:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        pg_types = {
            c.name: c.pg_type for c in table_columns(cursor, table_slice.schema, table_slice.table)
        }
        rows_in_table = 0
        if pg_types:
            params = statements.Params()
            predicate = statements.partition_predicate(table_slice, partition, pg_types, params)
            query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                sql.Identifier(table_slice.schema, table_slice.table), predicate
            )
            rows_in_table = int(_scalar(cursor, query.as_string(), params.values))  # type: ignore[arg-type]
        accounting, unresolved = (None, None, None), 0
        if _scalar(cursor, "SELECT to_regclass($1)", [f"{PLATFORM_SCHEMA}.{ACCOUNTING}"]):
            cursor.execute(
                sql.SQL(
                    "SELECT rows_read, rows_loaded, rows_dead_lettered FROM {}"
                    " WHERE asset_key = $1 AND partition_key = $2"
                )
                .format(sql.Identifier(PLATFORM_SCHEMA, ACCOUNTING))
                .as_string(),
                parameters=[asset_key, partition.key],
            )
            accounting = cursor.fetchone() or accounting
        if _scalar(cursor, "SELECT to_regclass($1)", [f"{PLATFORM_SCHEMA}.{DEAD_LETTERS}"]):
            params = statements.Params()
            query = sql.SQL(
                "SELECT count(*) FROM {} WHERE asset_key = {} AND partition_key = {}"
                " AND status IN ({})"
            ).format(
                sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
                params.add(asset_key),
                params.add(partition.key),
                sql.SQL(", ").join(params.add(status) for status in UNRESOLVED),
            )
            unresolved = int(_scalar(cursor, query.as_string(), params.values))  # type: ignore[arg-type]
    finally:
        cursor.close()
        conn.rollback()
    read, loaded, dead = (None if v is None else int(v) for v in accounting)
    return PartitionAudit(read, loaded, dead, rows_in_table, unresolved)
