"""Dead letters of an incremental extract that a newer version of their row has replaced.

A table row rejected by one extract may be fixed in the source and loaded by a later one. Its old
letter must not stay waiting: replaying it would overwrite the newer row with the older version.
So every write of an extract discards, in the same transaction, the unresolved letters of earlier
runs whose key the table now holds at a later ``updated_at`` than the letter's, recorded like any
discard (who: the platform, why: superseded) and moved from dead-lettered to discarded in the
accounting, so rows read = loaded + dead-lettered + discarded still holds.
"""

from dataclasses import dataclass, field

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.dead_letters.discard_store import DISCARD_DDL, DISCARDS, record_discards
from platform_assets.lib.dead_letters.side_writes import DEAD_LETTERS, UNRESOLVED, WriteTally
from platform_assets.lib.tables.platform_tables import PLATFORM_SCHEMA, create_platform_table
from platform_assets.lib.tables.statements import Params
from platform_assets.lib.tables.table_slice import TableSlice

SUPERSEDED_BY = "platform (superseded)"
# How Postgres writes a timestamptz (in a UTC session, as the extract reads it) or a timestamp as
# text: a letter's payload is cast only when it has that shape (CASE: the server may evaluate
# conditions in any order), so an odd payload can never fail the write; it is simply not
# superseded.
_PG_TIME_TEXT = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?"
_PG_TEXT_OF = {
    "timestamptz": _PG_TIME_TEXT + r"[+-]\d{2}(:\d{2})?$",
    "timestamp": _PG_TIME_TEXT + "$",
}
# A key in a letter's payload that fits a bigint: cast only when it has this shape.
INTEGER_TEXT = r"^-?\d{1,18}$"


@dataclass
class SupersededLetterDiscard:
    """Discard the earlier unresolved letters of rows the table now holds at a later version."""

    asset_key: str
    partition_key: str
    table_slice: TableSlice
    key_column: str
    updated_at_column: str
    run_id: str
    updated_at_type: str = "timestamptz"  # or "timestamp": wall-clock times
    discarded: int = field(default=0)

    def prepare(self, cursor: adbc.Cursor) -> None:
        """Create the discards table if needed."""
        create_platform_table(cursor, DISCARDS, DISCARD_DDL)

    def apply(self, cursor: adbc.Cursor, tally: WriteTally) -> None:
        """Mark the superseded letters discarded and record why (after the accounting write)."""
        params = Params()
        key_field, at_field = params.add(self.key_column), params.add(self.updated_at_column)
        update = sql.SQL(
            "UPDATE {dlq} d SET status = 'discarded', resolved_run_id = {run}, updated_at = now()"
            " FROM {table} t WHERE d.asset_key = {asset} AND d.partition_key = {partition}"
            " AND d.status IN ({unresolved}) AND d.run_id <> {run}"
            " AND t.{key} = (CASE WHEN d.payload->>{key_field} ~ {integer}"
            "  THEN (d.payload->>{key_field})::bigint END)"
            " AND t.{at} > (CASE WHEN d.payload->>{at_field} ~ {time_text}"
            "  THEN (d.payload->>{at_field})::{time_type} END)"
            " RETURNING d.id, d.partition_key"
        ).format(
            dlq=sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
            run=params.add(self.run_id),
            table=sql.Identifier(self.table_slice.schema, self.table_slice.table),
            asset=params.add(self.asset_key),
            partition=params.add(self.partition_key),
            unresolved=params.add_all(UNRESOLVED),
            key_field=key_field,
            at_field=at_field,
            integer=params.add(INTEGER_TEXT),
            time_text=params.add(_PG_TEXT_OF[self.updated_at_type]),
            time_type=sql.SQL(self.updated_at_type),  # one of _PG_TEXT_OF's keys
            key=sql.Identifier(self.key_column),
            at=sql.Identifier(self.updated_at_column),
        )
        cursor.execute(update.as_string(), parameters=params.values)
        superseded = cursor.fetchall()
        note = f"superseded: run {self.run_id} stored a newer version of the row"
        counts = record_discards(
            cursor, self.asset_key, superseded, note, SUPERSEDED_BY, self.run_id
        )
        self.discarded = sum(counts.values())
