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

# CSV pieces of whole lines (about 80k order rows); a longer line makes its piece longer.
CSV_BLOCK_BYTES = 8 << 20
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


def _empty_lines(piece: bytes, first_line: int) -> np.ndarray:
    """Line numbers of the piece's empty lines (pyarrow reads them as rows of empty fields, the
    same as a line of only commas, so they are found in the bytes)."""
    data = np.frombuffer(piece, dtype=np.uint8)
    breaks = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate([[0], breaks[:-1] + 1])
    length = breaks - starts
    crlf = length == 1
    crlf[crlf] = data[starts[crlf]] == ord("\r")
    return first_line + np.flatnonzero((length == 0) | crlf)


def _set_aside_empty_lines(
    table: pa.Table, source: str, lines: np.ndarray, empty_lines: np.ndarray
) -> tuple[pa.Table, np.ndarray, list[UnreadableRecord]]:
    if not len(empty_lines):
        return table, lines, []
    empty = np.isin(lines, empty_lines)
    records = [
        UnreadableRecord(f"{source}:{line}", {"line": ""}, "EmptyCsvLine", "the line is empty", {})
        for line in lines[empty].tolist()
    ]
    return table.filter(pa.array(~empty)), lines[~empty], records


def _pieces(path: Path, piece_bytes: int) -> Iterator[tuple[bytes, int]]:
    """The file after its header in pieces of whole lines, with each piece's first line number.

    A piece is about ``piece_bytes``, longer only when one line is longer than that. Reading the
    pieces ourselves bounds memory to one piece: pyarrow's streaming reader reads up to 32 blocks
    ahead of its consumer (measured: 600 MB of Arrow memory on this file type).
    """
    with path.open("rb") as handle:
        handle.readline()  # the header, read separately
        first_line, rest = 2, b""
        while block := handle.read(piece_bytes):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            if not cut:
                rest = data  # one line longer than a piece: read on
                continue
            piece, rest = data[:cut], data[cut:]
            yield piece, first_line
            first_line += piece.count(b"\n")
        if rest:
            yield rest, first_line  # a last line without a line break


def stream_csv(
    path: Path,
    declared: list[str],
    extra_columns: str = "error",
    block_bytes: int = CSV_BLOCK_BYTES,
) -> Iterator[RawBatch]:
    """The CSV at ``path`` in chunks of about ``block_bytes``, declared columns as text.

    Lines are numbered as in the file (the header is line 1) and every line is a record: this
    assumes no line breaks inside quoted fields, and an empty line is an unreadable record. An
    empty field is an empty string.
    """
    header = _csv_header(path)
    _check_columns(path, header, declared, extra_columns)
    for piece, first_line in _pieces(path, block_bytes):
        malformed: list[UnreadableRecord] = []

        def set_aside(
            row: pacsv.InvalidRow,
            first_line: int = first_line,
            malformed: list[UnreadableRecord] = malformed,
        ) -> str:
            line = first_line + row.number - 1
            malformed.append(
                UnreadableRecord(
                    source_ref=f"{path.name}:{line}",
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
            table = pacsv.read_csv(
                pa.BufferReader(piece),
                # Serial parsing is what makes pyarrow report each bad line's number.
                read_options=pacsv.ReadOptions(
                    use_threads=False, column_names=header, block_size=len(piece) + 1
                ),
                parse_options=pacsv.ParseOptions(
                    invalid_row_handler=set_aside, ignore_empty_lines=False
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(header, pa.binary()),
                    include_columns=declared,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as error:
            raise LandingFileError(f"landing file {path} cannot be read as CSV: {error}") from error
        bad_lines = [int(m.source_ref.rsplit(":", 1)[1]) for m in malformed]
        lines = np.setdiff1d(
            np.arange(first_line, first_line + piece.count(b"\n") + (not piece.endswith(b"\n"))),
            np.array(bad_lines, dtype=np.int64),
            assume_unique=True,
        )
        empty_lines = _empty_lines(piece, first_line)
        table, lines, empty = _set_aside_empty_lines(table, path.name, lines, empty_lines)
        rows, lines, undecodable = _decode(table, path.name, lines)
        yield RawBatch(rows, path.name, lines, malformed + empty + undecodable)


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
