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
from platform_assets.lib.tables.partition_profile import rows_in_partitions
from platform_assets.lib.tables.snapshot import column_types, read_only_snapshot
from platform_assets.lib.tables.table_slice import WHOLE_TABLE, TableSlice


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


def audit_partitions(
    conn: adbc.Connection, asset_key: str, table_slice: TableSlice, appended: bool = False
) -> dict[str, PartitionAudit]:
    """The audit of every partition in ``table_slice`` (of the whole table, key
    ``WHOLE_TABLE``, when it names none), in one snapshot and a fixed number of statements
    whatever the number of partitions: each figure is one ``GROUP BY`` partition. ``appended``:
    the partitions are written by appends, so their files' lines add up over all their loads."""
    keys = [p.key for p in table_slice.partitions] or [WHOLE_TABLE]
    with read_only_snapshot(conn) as cursor:
        pg_types = column_types(cursor, table_slice)
        rows_in_table = rows_in_partitions(cursor, table_slice, pg_types)
        cursor.execute(
            "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL,"
            " to_regclass($3) IS NOT NULL",
            parameters=[
                f"{PLATFORM_SCHEMA}.{table}" for table in (ACCOUNTING, DEAD_LETTERS, FILE_LINES)
            ],
        )
        has_accounting, has_letters, has_file_lines = cursor.fetchone()
        accounting = _accounting(cursor, asset_key, keys) if has_accounting else {}
        unresolved = _unresolved(cursor, asset_key, keys) if has_letters else {}
        top_rules = _top_rules(cursor, asset_key, keys) if has_letters else {}
        files = _file_lines(cursor, asset_key, keys, appended) if has_file_lines else {}
    audits = {}
    for key in keys:
        read, loaded, dead, discarded = accounting.get(key, (None, None, None, 0))
        audits[key] = PartitionAudit(
            read,
            loaded,
            dead,
            rows_in_table[key],
            unresolved.get(key, 0),
            files.get(key, []),
            top_rules.get(key, {}),
            discarded,
        )
    return audits


def _of_partitions(asset_key: str, keys: list[str], params: statements.Params) -> sql.Composable:
    """The rows of platform table ``d`` about ``asset_key``'s partitions ``keys``."""
    return sql.SQL("d.asset_key = {} AND d.partition_key IN ({})").format(
        params.add(asset_key), params.add_all(keys)
    )


def _accounting(
    cursor: adbc.Cursor, asset_key: str, keys: list[str]
) -> dict[str, tuple[int, int, int, int]]:
    """``{partition: (read, loaded, dead-lettered, discarded)}`` as recorded, where recorded."""
    params = statements.Params()
    query = sql.SQL(
        # rows_discarded read by name so a table from before discards still reads
        "SELECT d.partition_key, d.rows_read, d.rows_loaded, d.rows_dead_lettered,"
        " coalesce((to_jsonb(d)->>'rows_discarded')::bigint, 0) FROM {} d WHERE {}"
    ).format(sql.Identifier(PLATFORM_SCHEMA, ACCOUNTING), _of_partitions(asset_key, keys, params))
    cursor.execute(query.as_string(), parameters=params.values)
    return {key: tuple(int(v) for v in figures) for key, *figures in cursor.fetchall()}  # type: ignore[misc]


def _unresolved(cursor: adbc.Cursor, asset_key: str, keys: list[str]) -> dict[str, int]:
    """``{partition: dead letters still unresolved}``, for the partitions that have any."""
    params = statements.Params()
    query = sql.SQL(
        "SELECT d.partition_key, count(*) FROM {} d WHERE {} AND d.status IN ({})"
        " GROUP BY d.partition_key"
    ).format(
        sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
        _of_partitions(asset_key, keys, params),
        params.add_all(UNRESOLVED),
    )
    cursor.execute(query.as_string(), parameters=params.values)
    return {key: int(count) for key, count in cursor.fetchall()}


def _top_rules(cursor: adbc.Cursor, asset_key: str, keys: list[str]) -> dict[str, dict[str, int]]:
    """Per partition, the rules its unresolved dead letters break most (``column:check``, or
    the error class of a record that could not be read), with how many letters break each."""
    params = statements.Params()
    query = sql.SQL(
        "SELECT partition_key, rule, letters FROM ("
        " SELECT d.partition_key, {rule} AS rule, count(*) AS letters, row_number() OVER"
        " (PARTITION BY d.partition_key ORDER BY count(*) DESC, {rule}) AS place"
        " FROM {dlq} d {failures} WHERE {of_partitions} AND d.status IN ({unresolved})"
        " GROUP BY d.partition_key, {rule}) r"
        " WHERE place <= {top} ORDER BY partition_key, place"
    ).format(
        rule=RULE_BROKEN,
        dlq=sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
        failures=FAILURES_OF_LETTER,
        of_partitions=_of_partitions(asset_key, keys, params),
        unresolved=params.add_all(UNRESOLVED),
        top=params.add(TOP_RULES),
    )
    cursor.execute(query.as_string(), parameters=params.values)
    rules: dict[str, dict[str, int]] = {}
    for key, rule, letters in cursor.fetchall():
        rules.setdefault(key, {})[rule] = int(letters)
    return rules


def _file_lines(
    cursor: adbc.Cursor, asset_key: str, keys: list[str], appended: bool
) -> dict[str, list[FileLinesAudit]]:
    """Per partition, each landing file's recorded lines, beside the lines of the dead letters
    stored for it by the same load (any status: a replay resolves a letter, it does not remove
    it), or by every load when the partition is ``appended`` (its recorded lines are their sum)."""
    params = statements.Params()
    query = sql.SQL(
        "SELECT d.partition_key, d.source_file, d.data_lines, d.lines_loaded,"
        " d.lines_dead_lettered, coalesce(s.lines, 0) FROM {lines} d"
        " LEFT JOIN LATERAL (SELECT sum(l.source_lines) AS lines FROM {dlq} l"
        "  WHERE l.asset_key = d.asset_key AND l.partition_key = d.partition_key"
        "  AND {same_load}"
        "  AND left(l.source_ref, length(d.source_file) + 1) = d.source_file || ':') s ON true"
        " WHERE {of_partitions} ORDER BY d.partition_key, d.source_file"
    ).format(
        dlq=sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
        lines=sql.Identifier(PLATFORM_SCHEMA, FILE_LINES),
        same_load=sql.SQL("TRUE" if appended else "l.run_id = d.run_id"),
        of_partitions=_of_partitions(asset_key, keys, params),
    )
    cursor.execute(query.as_string(), parameters=params.values)
    files: dict[str, list[FileLinesAudit]] = {}
    for key, name, data, loaded, dead, stored in cursor.fetchall():
        files.setdefault(key, []).append(
            FileLinesAudit(name, int(data), int(loaded), int(dead), int(stored))
        )
    return files
