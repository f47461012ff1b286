"""Streaming landing files (CSV and Parquet) in chunks of text fields, with bounded memory.

Every field comes out as text exactly as the file holds it, so one parser types every format and a
rejected row's payload is what the source said. A record that cannot be read at all (a CSV line
with the wrong number of fields, a field that is not UTF-8) is set aside as an
``UnreadableRecord`` with its raw content, never dropped. A file that cannot be read at all
(missing, empty, wrong or missing columns, not CSV/Parquet) raises ``LandingFileError``.
"""

import base64
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from platform_assets.lib.arrow_cast import cast_isolating_failures

# A CSV block must hold the longest record: 16 MiB takes a 10 MB field, and memory stays at a few
# blocks (about 150k order rows each) whatever the file's size.
CSV_BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 262_144


class LandingFileError(Exception):
    """A landing file cannot be read at all; the run must stop and say why (nothing is lost)."""


@dataclass(frozen=True)
class UnreadableRecord:
    """A record that could not be split into fields or decoded, with its raw content."""

    source_ref: str
    payload: dict[str, Any]
    error_class: str
    message: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class RawBatch:
    """A chunk of a file: the declared columns as text, where each row came from (``source``
    and its line or row number in ``positions``), and the stretch's unreadable records.

    References are built only for the rows that need one (dead letters), not per row read.
    """

    rows: pa.Table
    source: str
    positions: np.ndarray
    unreadable: list[UnreadableRecord] = field(default_factory=list)
    position_prefix: str = ""

    @property
    def records_read(self) -> int:
        """Records in this chunk: rows plus unreadable records."""
        return self.rows.num_rows + len(self.unreadable)

    def source_ref(self, index: int) -> str:
        """``file:line`` (or ``file:row n``) of row ``index``."""
        return f"{self.source}:{self.position_prefix}{self.positions[index]}"

    @property
    def source_refs(self) -> list[str]:
        """Every row's reference, in order."""
        return [self.source_ref(index) for index in range(self.rows.num_rows)]


def _check_columns(path: Path, found: list[str], declared: list[str], extra: str) -> None:
    missing = [name for name in declared if name not in found]
    if missing:
        raise LandingFileError(f"landing file {path} lacks the declared column(s) {missing}")
    unexpected = [name for name in found if name not in declared]
    if unexpected and extra == "error":
        raise LandingFileError(
            f"landing file {path} has undeclared column(s) {unexpected}; declare them in the"
            " dataset spec, or set source.extra_columns: ignore"
        )


def _csv_header(path: Path) -> list[str]:
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    with path.open("rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise LandingFileError(f"landing file {path} is empty: it has not even a header line")
    try:
        return next(csv.reader([first.decode("utf-8-sig")]))
    except UnicodeDecodeError as error:
        raise LandingFileError(f"landing file {path} has a header that is not UTF-8") from error


def _decode(
    rows: pa.Table, source: str, lines: np.ndarray
) -> tuple[pa.Table, np.ndarray, list[UnreadableRecord]]:
    """Binary fields as UTF-8 text; rows with a field that is not UTF-8 are set aside."""
    bad = np.zeros(rows.num_rows, dtype=bool)
    columns, bad_columns = [], {}
    for name in rows.column_names:
        text, failed = cast_isolating_failures(rows.column(name).combine_chunks(), pa.string())
        columns.append(text)
        if failed.any():
            bad |= failed
            bad_columns[name] = failed
    decoded = pa.table(columns, names=rows.column_names)
    if not bad.any():
        return decoded, lines, []
    unreadable = []
    for index in np.flatnonzero(bad):
        raw = {name: rows.column(name)[index].as_py() for name in rows.column_names}
        columns_bad = [name for name, failed in bad_columns.items() if failed[index]]
        unreadable.append(
            UnreadableRecord(
                source_ref=f"{source}:{lines[index]}",
                payload={
                    name: None if value is None else value.decode("utf-8", "backslashreplace")
                    for name, value in raw.items()
                },
                error_class="InvalidEncoding",
                message=f"field(s) {columns_bad} are not valid UTF-8",
                detail={
                    "columns": columns_bad,
                    "raw_base64": {
                        name: base64.b64encode(raw[name]).decode() for name in columns_bad
                    },
                },
            )
        )
    return decoded.filter(pa.array(~bad)), lines[~bad], unreadable


def stream_csv(
    path: Path,
    declared: list[str],
    extra_columns: str = "error",
    block_bytes: int = CSV_BLOCK_BYTES,
) -> Iterator[RawBatch]:
    """The CSV at ``path`` in chunks of about ``block_bytes``, declared columns as text.

    Lines are numbered as in the file (the header is line 1); this assumes one record per line
    (no line breaks inside quoted fields). An empty field is an empty string.
    """
    header = _csv_header(path)
    _check_columns(path, header, declared, extra_columns)
    malformed: list[UnreadableRecord] = []
    malformed_lines: list[int] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        malformed_lines.append(row.number)
        malformed.append(
            UnreadableRecord(
                source_ref=f"{path.name}:{row.number}",
                payload={"line": row.text},
                error_class="MalformedCsvLine",
                message=f"expected {row.expected_columns} fields, found {row.actual_columns}",
                detail={
                    "expected_fields": row.expected_columns,
                    "found_fields": row.actual_columns,
                },
            )
        )
        return "skip"

    try:
        reader = pacsv.open_csv(
            path,
            # Serial parsing is what makes pyarrow report each bad line's number.
            read_options=pacsv.ReadOptions(use_threads=False, block_size=block_bytes),
            parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.binary()),
                include_columns=declared,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        next_line, reported = 2, 0
        for batch in reader:
            # Lines of this batch: the next ones not set aside (the handler has already seen every
            # bad line up to the end of the batch, maybe some beyond).
            skipped = np.array(sorted(malformed_lines), dtype=np.int64)
            candidates = np.arange(next_line, next_line + batch.num_rows + len(skipped))
            lines = np.setdiff1d(candidates, skipped, assume_unique=True)[: batch.num_rows]
            if batch.num_rows:
                next_line = int(lines[-1]) + 1
            rows, lines, undecodable = _decode(pa.Table.from_batches([batch]), path.name, lines)
            mine = [
                m for m in malformed[reported:] if int(m.source_ref.rsplit(":", 1)[1]) < next_line
            ]
            reported += len(mine)
            yield RawBatch(rows, path.name, lines, mine + undecodable)
        if reported < len(malformed):  # bad lines after the last good row
            yield RawBatch(
                pa.table({name: pa.array([], pa.string()) for name in declared}),
                path.name,
                np.empty(0, dtype=np.int64),
                malformed[reported:],
            )
    except pa.ArrowInvalid as error:
        raise LandingFileError(f"landing file {path} cannot be read as CSV: {error}") from error


def stream_parquet(
    path: Path,
    declared: list[str],
    extra_columns: str = "error",
    batch_rows: int = PARQUET_BATCH_ROWS,
) -> Iterator[RawBatch]:
    """The Parquet file at ``path`` in row batches, declared columns rendered as text."""
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    try:
        parquet = pq.ParquetFile(path)
        _check_columns(path, parquet.schema_arrow.names, declared, extra_columns)
        first_row = 1
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=declared):
            table = pa.Table.from_batches([batch])
            # Arrow renders timestamps with their offset ("…00.123000Z"), as the parser expects.
            rows = pa.table([table.column(n).cast(pa.string()) for n in declared], names=declared)
            numbers = np.arange(first_row, first_row + batch.num_rows)
            first_row += batch.num_rows
            yield RawBatch(rows, path.name, numbers, position_prefix="row ")
    except (pa.ArrowInvalid, OSError) as error:
        raise LandingFileError(f"landing file {path} cannot be read as Parquet: {error}") from error
