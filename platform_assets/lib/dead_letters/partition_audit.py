"""Does a partition add up? Its accounting, against what the table and the dead-letter queue hold.

Read by the datasets' asset checks: rows read = loaded + dead-lettered in the accounting, the
table really holds the loaded rows, and the queue really holds the unresolved dead letters. For
landing files, per file: its data lines (counted from its bytes at load) = the lines of its loaded
rows + the lines of its dead letters, and the dead letters stored for that load really span that
many lines.
"""

from dataclasses import dataclass, field

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.dead_letters.queue_summary import FAILURES_OF_LETTER, RULE_BROKEN
from platform_assets.lib.dead_letters.side_writes import (
    ACCOUNTING,
    DEAD_LETTERS,
    FILE_LINES,
    PLATFORM_SCHEMA,
    TOP_RULES,
    UNRESOLVED,
)
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.partition_profile import rows_in_partition
from platform_assets.lib.tables.snapshot import column_types, read_only_snapshot
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice


@dataclass(frozen=True)
class FileLinesAudit:
    """One landing file of the partition's last load: its lines as recorded, and the lines that
    the dead letters stored for that load really span."""

    source_file: str
    data_lines: int
    lines_loaded: int
    lines_dead_lettered: int
    dead_letter_lines_stored: int

    @property
    def adds_up(self) -> bool:
        """Data lines = loaded + dead-lettered lines; the stored dead letters span the latter."""
        return (
            self.data_lines == self.lines_loaded + self.lines_dead_lettered
            and self.lines_dead_lettered == self.dead_letter_lines_stored
        )


@dataclass(frozen=True)
class PartitionAudit:
    """One partition's accounting (None when it was never recorded), the real counts, and the
    lines of each landing file it was loaded from."""

    rows_read: int | None
    rows_loaded: int | None
    rows_dead_lettered: int | None
    rows_in_table: int
    unresolved_dead_letters: int
    files: list[FileLinesAudit] = field(default_factory=list)
    top_rules_broken: dict[str, int] = field(default_factory=dict)
    rows_discarded: int = 0

    @property
    def every_row_read_accounted_for(self) -> bool:
        """Recorded, read = loaded + dead-lettered + discarded, the queue holds exactly the
        dead-lettered rows, and every landing file's lines are accounted for."""
        return (
            self.rows_read is not None
            and self.rows_read == self.rows_loaded + self.rows_dead_lettered + self.rows_discarded  # type: ignore[operator]
            and self.rows_dead_lettered == self.unresolved_dead_letters
            and all(file.adds_up for file in self.files)
        )

    @property
    def adds_up(self) -> bool:
        """Every row read is accounted for, and the table holds exactly the loaded rows."""
        return self.every_row_read_accounted_for and self.rows_loaded == self.rows_in_table

    @property
    def dead_letter_ratio(self) -> float:
        """Share of the rows read that were dead-lettered (0 for an empty partition)."""
        return (self.rows_dead_lettered or 0) / self.rows_read if self.rows_read else 0.0


def _scalar(cursor: adbc.Cursor, query: str, params: list[object]) -> object:
    cursor.execute(query, parameters=params)
    row = cursor.fetchone()
    return None if row is None else row[0]


def audit_partition(
    conn: adbc.Connection, asset_key: str, table_slice: TableSlice, appended: bool = False
) -> PartitionAudit:
    """The audit of the single partition in ``table_slice`` (of the whole table, key
    ``WHOLE_TABLE``, when it names none), in one snapshot. ``appended``: the partition is written
    by appends, so its files' lines add up over all its loads."""
    partition = table_slice.partitions[0] if table_slice.partitions else PartitionSlice(WHOLE_TABLE)
    with read_only_snapshot(conn) as cursor:
        pg_types = column_types(cursor, table_slice)
        rows_in_table = (
            rows_in_partition(cursor, table_slice, partition, pg_types) if pg_types else 0
        )
        accounting, unresolved, top_rules = (None, None, None, 0), 0, {}
        if _scalar(cursor, "SELECT to_regclass($1)", [f"{PLATFORM_SCHEMA}.{ACCOUNTING}"]):
            cursor.execute(
                sql.SQL(
                    # rows_discarded read by name so a table from before discards still reads
                    "SELECT rows_read, rows_loaded, rows_dead_lettered,"
                    " coalesce((to_jsonb(a)->>'rows_discarded')::bigint, 0) FROM {} a"
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
                params.add_all(UNRESOLVED),
            )
            unresolved = int(_scalar(cursor, query.as_string(), params.values))  # type: ignore[arg-type]
            top_rules = _top_rules(cursor, asset_key, partition.key)
        files = _file_lines(cursor, asset_key, partition.key, appended)
    read, loaded, dead, discarded = (None if v is None else int(v) for v in accounting)
    return PartitionAudit(
        read, loaded, dead, rows_in_table, unresolved, files, top_rules, discarded or 0
    )


def _top_rules(cursor: adbc.Cursor, asset_key: str, partition_key: str) -> dict[str, int]:
    """The rules the partition's unresolved dead letters break most (``column:check``, or the
    error class of a record that could not be read), with how many letters break each."""
    params = statements.Params()
    query = sql.SQL(
        "SELECT {}, count(*) FROM {} d {}"
        " WHERE d.asset_key = {} AND d.partition_key = {} AND d.status IN ({})"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {}"
    ).format(
        RULE_BROKEN,
        sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
        FAILURES_OF_LETTER,
        params.add(asset_key),
        params.add(partition_key),
        params.add_all(UNRESOLVED),
        params.add(TOP_RULES),
    )
    cursor.execute(query.as_string(), parameters=params.values)
    return {rule: int(count) for rule, count in cursor.fetchall()}


def _file_lines(
    cursor: adbc.Cursor, asset_key: str, partition_key: str, appended: bool
) -> list[FileLinesAudit]:
    """Each landing file's recorded lines, beside the lines of the dead letters stored for it
    by the same load (any status: a replay resolves a letter, it does not remove it), or by
    every load when the partition is ``appended`` (its recorded lines are their sum)."""
    if not _scalar(cursor, "SELECT to_regclass($1)", [f"{PLATFORM_SCHEMA}.{FILE_LINES}"]):
        return []
    cursor.execute(
        sql.SQL(
            "SELECT f.source_file, f.data_lines, f.lines_loaded, f.lines_dead_lettered,"
            " (SELECT coalesce(sum(d.source_lines), 0) FROM {dlq} d"
            "  WHERE d.asset_key = f.asset_key AND d.partition_key = f.partition_key"
            "  AND {same_load}"
            "  AND left(d.source_ref, length(f.source_file) + 1) = f.source_file || ':')"
            " FROM {lines} f WHERE f.asset_key = $1 AND f.partition_key = $2"
            " ORDER BY f.source_file"
        )
        .format(
            dlq=sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
            lines=sql.Identifier(PLATFORM_SCHEMA, FILE_LINES),
            same_load=sql.SQL("TRUE" if appended else "d.run_id = f.run_id"),
        )
        .as_string(),
        parameters=[asset_key, partition_key],
    )
    return [
        FileLinesAudit(name, int(data), int(loaded), int(dead), int(stored))
        for name, data, loaded, dead, stored in cursor.fetchall()
    ]
