"""The result of ingesting a partition: every row read is either loaded or dead-lettered.

No database here: built by the ingestion assets, written by the IO manager in one transaction with
the good rows (see ``lib/dead_letters/side_writes.py``). A small result is an ``IngestedFrame``; a
large one is an ``IngestedStream`` of chunks, so memory stays bounded by one chunk.
"""

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from platform_assets.lib.jsonb import JSONB_METADATA, canonical_json, jsonb_bytes

STAGES = ("parse", "validate", "transform", "load")
DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("partition_key", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("source_ref", pa.string()),
        pa.field("payload", pa.binary(), metadata=JSONB_METADATA),
        pa.field("error_class", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("error_detail", pa.binary(), metadata=JSONB_METADATA),
        pa.field("record_hash", pa.string()),
        pa.field("source_lines", pa.int32()),
    ]
)


@dataclass(frozen=True)
class Checkpoint:
    """Where an incremental extract of ``source`` got to (a JSON-able high-water mark), and the
    mark it started from (None for a first extract): it commits only over that one."""

    source: str
    high_water: dict[str, Any]
    started_from: dict[str, Any] | None


@dataclass(frozen=True)
class DeadLetter:
    """One row that could not be loaded: its raw payload untouched, where it came from, why."""

    partition_key: str
    stage: str
    source_ref: str
    payload: dict[str, Any]
    error_class: str
    error_message: str
    error_detail: dict[str, Any] | None = None
    source_lines: int = 1

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage {self.stage!r} is not one of {STAGES}")


def record_hash(payload: dict) -> str:
    """A stable hash of a raw record (its canonical JSON), to recognise it again."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def dead_letter_table(letters: list[DeadLetter]) -> pa.Table:
    """Dead letters in the layout the dead-letter table is loaded from (jsonb as binary)."""
    return pa.table(
        [
            pa.array([d.partition_key for d in letters], pa.string()),
            pa.array([d.stage for d in letters], pa.string()),
            pa.array([d.source_ref for d in letters], pa.string()),
            pa.array([jsonb_bytes(d.payload) for d in letters], pa.binary()),
            pa.array([d.error_class for d in letters], pa.string()),
            pa.array([d.error_message for d in letters], pa.string()),
            pa.array([jsonb_bytes(d.error_detail) for d in letters], pa.binary()),
            pa.array([record_hash(d.payload) for d in letters], pa.string()),
            pa.array([d.source_lines for d in letters], pa.int32()),
        ],
        schema=DEAD_LETTER_SCHEMA,
    )


def no_dead_letters() -> pa.Table:
    """An empty dead-letter table, for an extract in which nothing failed."""
    return DEAD_LETTER_SCHEMA.empty_table()


@dataclass(frozen=True)
class FileLines:
    """A landing file's physical data lines (counted from its bytes, not by the reader) and the
    lines its loaded rows and its dead letters span: the first must equal the other two summed,
    so no reader bug can hide lines of a file. ``checks`` says what vouched for the file's
    completeness (its ready marker, its manifest's checksum and rows), if anything did."""

    data_lines: int = 0
    lines_loaded: int = 0
    lines_dead_lettered: int = 0
    checks: str = ""

    def __add__(self, other: "FileLines") -> "FileLines":
        return FileLines(
            self.data_lines + other.data_lines,
            self.lines_loaded + other.lines_loaded,
            self.lines_dead_lettered + other.lines_dead_lettered,
            other.checks or self.checks,
        )

    @property
    def adds_up(self) -> bool:
        """Data lines = lines loaded + lines dead-lettered."""
        return self.data_lines == self.lines_loaded + self.lines_dead_lettered


@dataclass(frozen=True)
class IngestedChunk:
    """Part of a partition's ingestion: good rows, dead letters, rows read per partition key, the
    lines per (partition key, landing file) for file sources, how many dead letters broke each
    rule (``column:check``, or the error class of an unreadable record), and for an incremental
    extract where it got to once this chunk is in (the last one commits)."""

    rows: pa.Table
    dead_letters: pa.Table
    rows_read: dict[str, int]
    checkpoint: Checkpoint | None = None
    file_lines: dict[tuple[str, str], FileLines] = field(default_factory=dict)
    rules_broken: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class IngestedStream:
    """A partition's ingestion as chunks, written as they come in one transaction.

    ``read_chunks`` starts reading from the beginning each time it is called, so a write retried
    after a transient error reads the source again instead of resuming half-way. Summed over the
    chunks, rows read must equal rows loaded plus dead letters per partition, or nothing commits.
    The last chunk's ``checkpoint`` commits in the same transaction as the rows.
    """

    read_chunks: Callable[[], Iterator[IngestedChunk]]


@dataclass(frozen=True)
class IngestedFrame:
    """Good rows, dead letters, how many rows each partition read, and where the extract got to.

    ``rows_read[key]`` must equal the partition's loaded rows plus its dead letters; the IO manager
    refuses to commit otherwise, so nothing read is ever silently lost. ``checkpoint`` commits in
    the same transaction as the rows it covers, so a crash can neither skip nor repeat them.
    """

    rows: pd.DataFrame
    dead_letters: pa.Table
    rows_read: dict[str, int]
    checkpoint: Checkpoint | None = None
