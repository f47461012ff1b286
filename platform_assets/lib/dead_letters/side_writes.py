"""Rows that commit or roll back with a partition's good rows: dead letters and accounting.

A side write adds DDL to the table-preparation step and statements to the write transaction, so a
partition's dead letters and its read/loaded/dead-lettered figures can never disagree with its rows.
For landing files, the accounting is also kept in physical lines per file: the file's data lines
(counted from its bytes) must equal the lines of its loaded rows plus the lines of its dead letters.
"""

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import adbc_driver_postgresql.dbapi as adbc
import psycopg
import pyarrow as pa
from psycopg import sql

from platform_assets.lib.dead_letters.spool import DeadLetterSpool
from platform_assets.lib.ingestion.result import DEAD_LETTER_SCHEMA, Checkpoint, FileLines
from platform_assets.lib.row_hash import ContentDigest
from platform_assets.lib.tables.platform_tables import (
    PLATFORM_SCHEMA,
    add_column_when_missing,
    create_platform_table,
    replace_check_when_missing,
)
from platform_assets.lib.tables.statements import Params, execute_values

DEAD_LETTERS = "dead_letter_records"
ACCOUNTING = "ingestion_accounting"
FILE_LINES = "ingestion_file_lines"
CHECKPOINTS = "extract_checkpoints"
UNRESOLVED = ("new", "replaying")
TOP_RULES = 5  # the rules broken most, reported with a write's dead letters and by the checks

DEAD_LETTER_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.dead_letter_records (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        asset_key text NOT NULL,
        partition_key text NOT NULL,
        run_id text NOT NULL,
        stage text NOT NULL CHECK (stage IN ('parse', 'validate', 'transform', 'load')),
        source_ref text,
        payload jsonb NOT NULL,
        error_class text NOT NULL,
        error_message text NOT NULL,
        error_detail jsonb,
        record_hash text NOT NULL,
        code_version text,
        attempt_count integer NOT NULL DEFAULT 1,
        status text NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'replaying', 'resolved', 'discarded')),
        resolved_run_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX IF NOT EXISTS dead_letter_records_partition_idx"
    " ON platform.dead_letter_records (asset_key, partition_key, status)",
    # The physical lines of its file a dead letter covers (a record can span several lines).
    add_column_when_missing(DEAD_LETTERS, "source_lines", "integer NOT NULL DEFAULT 1"),
]
ACCOUNTING_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.ingestion_accounting (
        asset_key text NOT NULL,
        partition_key text NOT NULL,
        rows_read bigint NOT NULL,
        rows_loaded bigint NOT NULL,
        rows_dead_lettered bigint NOT NULL,
        run_id text NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        rows_discarded bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (asset_key, partition_key),
        CONSTRAINT ingestion_accounting_adds_up
            CHECK (rows_read = rows_loaded + rows_dead_lettered + rows_discarded)
    )
    """,
    # Tables from before discards: the column, and the check counting it instead of the old one.
    add_column_when_missing(ACCOUNTING, "rows_discarded", "bigint NOT NULL DEFAULT 0"),
    replace_check_when_missing(
        ACCOUNTING,
        "ingestion_accounting_check",
        "ingestion_accounting_adds_up",
        "rows_read = rows_loaded + rows_dead_lettered + rows_discarded",
    ),
    """
    CREATE TABLE IF NOT EXISTS platform.ingestion_file_lines (
        asset_key text NOT NULL,
        partition_key text NOT NULL,
        source_file text NOT NULL,
        data_lines bigint NOT NULL,
        lines_loaded bigint NOT NULL,
        lines_dead_lettered bigint NOT NULL,
        run_id text NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (asset_key, partition_key, source_file),
        CHECK (data_lines = lines_loaded + lines_dead_lettered)
    )
    """,
    # What vouched for the file's completeness: its ready marker, its manifest's sha256 and rows.
    add_column_when_missing(FILE_LINES, "completeness_checks", "text NOT NULL DEFAULT ''"),
]


CHECKPOINT_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.extract_checkpoints (
        source text PRIMARY KEY,
        high_water jsonb NOT NULL,
        run_id text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]


class AccountingError(ValueError):
    """Rows read do not equal rows loaded plus rows dead-lettered: something would be lost."""


class CheckpointMovedError(ValueError):
    """An extract's checkpoint moved while it ran: another extract stored the same changes."""


@dataclass
class WriteTally:
    """What the chunks of one write held, summed as they streamed into the table, per partition
    (``rules_broken``: how many dead letters broke each rule, per partition)."""

    rows_loaded: Counter[str] = field(default_factory=Counter)
    rows_read: Counter[str] = field(default_factory=Counter)
    dead_letters: DeadLetterSpool = field(default_factory=DeadLetterSpool)
    digests: defaultdict[str, ContentDigest] = field(
        default_factory=lambda: defaultdict(ContentDigest)
    )
    checkpoint: Checkpoint | None = None
    file_lines: defaultdict[tuple[str, str], FileLines] = field(
        default_factory=lambda: defaultdict(FileLines)
    )
    rules_broken: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )

    def add_file_lines(self, file_lines: dict[tuple[str, str], FileLines]) -> None:
        """Add a chunk's lines per (partition key, landing file)."""
        for key, lines in file_lines.items():
            self.file_lines[key] += lines


class SideWrite(Protocol):
    """More rows that must commit (or roll back) together with a slice's rows."""

    def prepare(self, cursor: adbc.Cursor) -> None:
        """DDL, run in the table-preparation transaction."""

    def apply(self, cursor: adbc.Cursor, tally: WriteTally) -> None:
        """Writes, run in the slice's write transaction once every chunk is in, before commit."""


def delete_partitions(
    cursor: adbc.Cursor,
    table: str,
    asset_key: str,
    partition_keys: list[str],
    statuses: tuple[str, ...] | list[str] | None = None,
) -> None:
    """Delete the rows of the platform ``table`` for ``asset_key``'s ``partition_keys`` (only
    those of ``statuses``, when given)."""
    params = Params()
    statement = sql.SQL("DELETE FROM {} WHERE asset_key = {} AND partition_key IN ({})").format(
        sql.Identifier(PLATFORM_SCHEMA, table),
        params.add(asset_key),
        params.add_all(partition_keys),
    )
    if statuses is not None:
        statement = sql.SQL("{} AND status IN ({})").format(statement, params.add_all(statuses))
    cursor.execute(statement.as_string(), parameters=params.values)


@dataclass
class DeadLetterWrite:
    """Replace the partitions' unresolved dead letters with the write's (resolved ones stay);
    with ``adds`` (an ``append``), add the write's to them instead."""

    asset_key: str
    partition_keys: list[str]
    run_id: str
    code_version: str
    adds: bool = False

    def prepare(self, cursor: adbc.Cursor) -> None:
        """Create the dead-letter table if needed."""
        create_platform_table(cursor, DEAD_LETTERS, DEAD_LETTER_DDL)

    def apply(self, cursor: adbc.Cursor, tally: WriteTally) -> None:
        """Delete the partitions' unresolved dead letters (unless the write adds), then COPY the
        new ones in."""
        if not self.adds:
            delete_partitions(cursor, DEAD_LETTERS, self.asset_key, self.partition_keys, UNRESOLVED)
        spool = tally.dead_letters
        if not len(spool):
            return
        strays = set(spool.per_partition) - set(self.partition_keys)
        if strays:
            raise AccountingError(
                f"{self.asset_key}: dead letters for partition(s) {sorted(strays)}, which this"
                f" write does not cover ({self.partition_keys}); nothing was written"
            )
        stamps = {
            "asset_key": self.asset_key,
            "run_id": self.run_id,
            "code_version": self.code_version,
        }
        schema = DEAD_LETTER_SCHEMA
        for name in stamps:
            schema = schema.append(pa.field(name, pa.string()))

        def stamped() -> Iterator[pa.RecordBatch]:
            for batch in spool.batches():
                values = [pa.array([v] * batch.num_rows, pa.string()) for v in stamps.values()]
                yield pa.RecordBatch.from_arrays([*batch.columns, *values], schema=schema)

        reader = pa.RecordBatchReader.from_batches(schema, stamped())
        cursor.adbc_ingest(DEAD_LETTERS, reader, mode="append", db_schema_name=PLATFORM_SCHEMA)


# How an accounting row takes a write's figures: in their place, or added to them (an append).
_REPLACED_FIGURES = sql.SQL(
    "rows_read = excluded.rows_read, rows_loaded = excluded.rows_loaded,"
    " rows_dead_lettered = excluded.rows_dead_lettered, rows_discarded = 0"
)
_ADDED_FIGURES = sql.SQL(
    "rows_read = a.rows_read + excluded.rows_read,"
    " rows_loaded = a.rows_loaded + excluded.rows_loaded,"
    " rows_dead_lettered = a.rows_dead_lettered + excluded.rows_dead_lettered"
)


@dataclass
class AccountingWrite:
    """Record rows read, loaded and dead-lettered per partition; refuse if they do not add up.

    The write's figures replace the partition's, or with ``adds`` (an ``append``) add to them,
    and so do its landing files' lines. After the write, ``figures`` holds each partition's
    counts in this write, ``rules_broken`` how many of each partition's dead letters broke each
    rule, and ``file_lines`` each partition's landing files' lines: each partition's own
    figures, for its metadata (a range run's days each get theirs) and the run's log.
    """

    asset_key: str
    run_id: str
    adds: bool = False
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    rules_broken: dict[str, Counter[str]] = field(default_factory=dict)
    file_lines: dict[str, dict[str, FileLines]] = field(default_factory=dict)

    def prepare(self, cursor: adbc.Cursor) -> None:
        """Create the accounting table if needed."""
        create_platform_table(cursor, ACCOUNTING, ACCOUNTING_DDL)

    def apply(self, cursor: adbc.Cursor, tally: WriteTally) -> None:
        """Check read = loaded + dead-lettered for every partition, then upsert the figures."""
        self.rules_broken = dict(tally.rules_broken)
        for (key, source_file), lines in tally.file_lines.items():
            self.file_lines.setdefault(key, {})[source_file] = lines
        dead_lettered = tally.dead_letters.per_partition
        strays = sorted(set(tally.rows_read) - set(tally.rows_loaded))
        if strays:
            raise AccountingError(
                f"{self.asset_key}: rows read for partition(s) {strays}, which this write does"
                " not cover; nothing was written"
            )
        for key, loaded in tally.rows_loaded.items():
            read, dead = tally.rows_read[key], dead_lettered[key]
            if read != loaded + dead:
                raise AccountingError(
                    f"{self.asset_key} partition {key}: {read} rows read but {loaded} loaded and"
                    f" {dead} dead-lettered; nothing was written"
                )
            self.figures[key] = {
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_dead_lettered": dead,
            }
        execute_values(
            cursor,
            sql.SQL(
                "INSERT INTO {} AS a (asset_key, partition_key, rows_read, rows_loaded,"
                " rows_dead_lettered, run_id)"
            ).format(sql.Identifier(PLATFORM_SCHEMA, ACCOUNTING)),
            [
                (self.asset_key, key, *figures.values(), self.run_id)
                for key, figures in self.figures.items()
            ],
            sql.SQL(
                "ON CONFLICT (asset_key, partition_key) DO UPDATE SET {},"
                " run_id = excluded.run_id, written_at = now()"
            ).format(_ADDED_FIGURES if self.adds else _REPLACED_FIGURES),
        )
        self._record_file_lines(cursor, tally)

    def _record_file_lines(self, cursor: adbc.Cursor, tally: WriteTally) -> None:
        """Check every landing file's lines add up, then replace the partitions' file lines."""
        for (key, source_file), lines in sorted(tally.file_lines.items()):
            if not lines.adds_up:
                raise AccountingError(
                    f"{self.asset_key} partition {key}: landing file {source_file} holds"
                    f" {lines.data_lines} data lines, but its loaded rows span"
                    f" {lines.lines_loaded} and its dead letters {lines.lines_dead_lettered};"
                    " nothing was written"
                )
        partitions = sorted(self.figures)
        if not partitions:
            return
        if not self.adds:
            delete_partitions(cursor, FILE_LINES, self.asset_key, partitions)
        execute_values(
            cursor,
            sql.SQL(
                "INSERT INTO {} AS f (asset_key, partition_key, source_file, data_lines,"
                " lines_loaded, lines_dead_lettered, run_id, completeness_checks)"
            ).format(sql.Identifier(PLATFORM_SCHEMA, FILE_LINES)),
            [
                (
                    *(self.asset_key, key, source_file),
                    *(lines.data_lines, lines.lines_loaded, lines.lines_dead_lettered),
                    *(self.run_id, lines.checks),
                )
                for (key, source_file), lines in sorted(tally.file_lines.items())
            ],
            sql.SQL(
                "ON CONFLICT (asset_key, partition_key, source_file) DO UPDATE SET"
                " data_lines = f.data_lines + excluded.data_lines,"
                " lines_loaded = f.lines_loaded + excluded.lines_loaded,"
                " lines_dead_lettered = f.lines_dead_lettered + excluded.lines_dead_lettered,"
                " run_id = excluded.run_id, completeness_checks = excluded.completeness_checks"
            ),
        )


@dataclass
class CheckpointWrite:
    """Move an extract's high-water mark, in the same transaction as the rows it covers."""

    run_id: str
    written: Checkpoint | None = None

    def prepare(self, cursor: adbc.Cursor) -> None:
        """Nothing: whether there is a checkpoint is known only once the chunks are in."""

    def apply(self, cursor: adbc.Cursor, tally: WriteTally) -> None:
        """Upsert the source's high-water mark, if the chunks carried one."""
        checkpoint = tally.checkpoint
        if checkpoint is None:
            return
        # Held until commit: concurrent first extracts do not race the CREATE.
        create_platform_table(cursor, CHECKPOINTS, CHECKPOINT_DDL)
        # Only over the mark the extract started from: of two overlapping extracts, the second
        # to commit would store the same changes again, so it writes nothing and fails.
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} AS c (source, high_water, run_id) VALUES ($1, $2::jsonb, $3)"
                " ON CONFLICT (source) DO UPDATE SET high_water = excluded.high_water,"
                " run_id = excluded.run_id, updated_at = now()"
                " WHERE c.high_water = $4::jsonb RETURNING 1"
            )
            .format(table=sql.Identifier(PLATFORM_SCHEMA, CHECKPOINTS))
            .as_string(),
            parameters=(
                checkpoint.source,
                json.dumps(checkpoint.high_water, default=str),
                self.run_id,
                json.dumps(checkpoint.started_from, default=str),
            ),
        )
        if cursor.fetchone() is None:
            raise CheckpointMovedError(
                f"the checkpoint of {checkpoint.source} moved since this extract started from"
                f" {checkpoint.started_from}: another extract committed these changes first;"
                " nothing was written"
            )
        self.written = checkpoint


def read_checkpoint(conn: psycopg.Connection, source: str) -> dict | None:
    """The last committed high-water mark of ``source``, or None before its first extract."""
    exists = conn.execute("SELECT to_regclass('platform.extract_checkpoints')").fetchone()[0]
    if exists is None:
        return None
    row = conn.execute(
        "SELECT high_water FROM platform.extract_checkpoints WHERE source = %s", (source,)
    ).fetchone()
    return None if row is None else row[0]
