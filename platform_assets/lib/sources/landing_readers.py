"""Streaming landing files in chunks of text fields, with bounded memory: CSV here, Parquet in
``parquet_reader``, both as the ``RawBatch`` defined here.

Every field comes out as text exactly as the file holds it, so one parser types every format and a
rejected row's payload is what the source said. CSV is read as RFC 4180 (``csv_records``): quoted
commas, doubled quotes and line breaks inside quotes. A record that cannot be read at all (a line
with the wrong number of fields, a quote that never closes, a field that is not UTF-8 or holds a
NUL byte) is set aside as an ``UnreadableRecord`` with its raw content, never dropped. Every row
and unreadable record says which physical lines it spans, so the lines of a file can be accounted
for independently of the parser. A file that cannot be read at all (missing, empty, CR-only line
breaks, repeated, wrong or missing columns, not CSV/Parquet) raises ``LandingFileError``.
"""

import base64
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Annotated, Any, BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from platform_assets.lib.arrow_cast import cast_isolating_failures
from platform_assets.lib.sources.compressed import DamagedArchive, open_landing_file
from platform_assets.lib.sources.csv_records import (
    DEFAULT_DIALECT,
    DEFAULT_RECORD_LIMITS,
    KEPT_BYTES,
    CsvDialect,
    PieceRecords,
    RecordLimits,
    Unreadable,
    read_piece,
    too_large,
)

UTF8_BOM = b"\xef\xbb\xbf"
# CSV pieces of whole lines (about 80k order rows); a longer line makes its piece longer.
CSV_BLOCK_BYTES = 8 << 20
_COUNT_BLOCK_BYTES = 1 << 20


class LandingFilesSource(BaseModel):
    """Files dropped in the landing zone: one or more per partition, CSV, Parquet or JSON Lines
    (``jsonl``: one object per line, each column at its ``path``), read in chunks.

    ``pattern`` is a glob under ``directory`` in which ``{date}`` stands for the partition's key
    (``YYYY-MM-DD`` for days, or the spec's ``partitions.key_format``); every matching file of
    the partition is read, in name order. A CSV record may span several lines (a quoted line
    break), up to ``max_record_lines`` and ``max_record_bytes``; a quote still open past them
    makes only its own line a dead letter, and a longer line is a dead letter too. A last line
    without a line break is a dead letter unless ``unterminated_last_line`` is ``load``, or the
    file's ``ready_marker`` or ``manifest`` checksum vouches for it (``completeness``).

    A CSV file's ``delimiter`` (``;`` and tab are common), ``quote``, ``encoding`` (``latin-1``,
    ``cp1252``: a byte the encoding leaves undefined makes its record a dead letter) and
    ``header`` (false: the declared columns are the file's by position) describe its dialect.

    An empty CSV field is a missing value; ``null_values`` lists the other spellings the file's
    publisher writes for one (``["NA"]`` from R, ``["\\N"]`` from MySQL, ``["NULL"]``), quoted or
    not, in every column.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["landing_files"]
    directory: str
    pattern: str
    format: Literal["csv", "parquet", "jsonl"] = "csv"
    extra_columns: Literal["error", "ignore"] = "error"
    max_record_bytes: Annotated[int, Field(ge=1)] = DEFAULT_RECORD_LIMITS.max_record_bytes
    max_record_lines: Annotated[int, Field(ge=1)] = DEFAULT_RECORD_LIMITS.max_record_lines
    unterminated_last_line: Literal["dead_letter", "load"] = "dead_letter"
    ready_marker: str | None = None
    manifest: str | None = None
    null_values: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    quote: Annotated[str, Field(min_length=1, max_length=1)] = '"'
    encoding: Literal["utf-8", "utf-8-sig", "latin-1", "cp1252"] = "utf-8"
    header: bool = True

    @model_validator(mode="after")
    def _pattern_names_the_partition(self) -> "LandingFilesSource":
        if self.null_values and self.format != "csv":
            raise ValueError(
                "source.null_values applies to CSV files: a Parquet file stores a missing value"
                " as a null"
            )
        if self.dialect != DEFAULT_DIALECT and self.format != "csv":
            raise ValueError("source.delimiter, quote, encoding and header apply to CSV files")
        if self.delimiter == self.quote or {self.delimiter, self.quote} & {"\r", "\n"}:
            raise ValueError(
                f"source.delimiter {self.delimiter!r} and quote {self.quote!r} must differ, and"
                " neither may be a line break"
            )
        if "{date}" not in self.pattern:
            raise ValueError("source.pattern must contain {date}")
        for field_name in ("ready_marker", "manifest"):
            value = getattr(self, field_name)
            if value is not None and ("{file}" not in value or "/" in value):
                raise ValueError(
                    f"source.{field_name} {value!r} must name a file beside the data file,"
                    " with {file} standing for the data file's name (e.g. '{file}.done')"
                )
        for field_name in ("directory", "pattern"):
            value = getattr(self, field_name)
            if PurePath(value).is_absolute() or ".." in PurePath(value).parts:
                raise ValueError(
                    f"source.{field_name} {value!r} must stay inside the landing zone"
                    " (a relative path without '..')"
                )
        return self

    @property
    def dialect(self) -> CsvDialect:
        """How the source's CSV files are written."""
        return CsvDialect(self.delimiter, self.quote, self.encoding, self.header)

    @property
    def record_limits(self) -> RecordLimits:
        """How far a CSV record may extend past its first line (quoted line breaks)."""
        return RecordLimits(self.max_record_bytes, self.max_record_lines)


class LandingFileError(Exception):
    """A landing file cannot be read at all; the run must stop and say why (nothing is lost)."""


@dataclass(frozen=True)
class UnreadableRecord:
    """A record that could not be split into fields or decoded, with its raw content and the
    number of physical lines it covers."""

    source_ref: str
    payload: dict[str, Any]
    error_class: str
    message: str
    detail: dict[str, Any]
    lines: int = 1


@dataclass(frozen=True)
class RawBatch:
    """A chunk of a file: the declared columns as text, where each row came from (``source``,
    its first line or row number in ``positions`` and how many lines it spans in
    ``line_counts``, 1 when omitted), and the stretch's unreadable records. For a landing file,
    ``file_data_lines`` is what the chunk adds to the file's count of data lines (the whole count
    on its first chunk, 0 on the others); None for sources without lines. ``file_checks`` says
    what vouched for the file's completeness (on its last chunk).

    References are built only for the rows that need one (dead letters), not per row read.
    """

    rows: pa.Table
    source: str
    positions: np.ndarray
    unreadable: list[UnreadableRecord] = field(default_factory=list)
    position_prefix: str = ""
    line_counts: np.ndarray | None = None
    file_data_lines: int | None = None
    file_checks: str = ""

    @property
    def records_read(self) -> int:
        """Records in this chunk: rows plus unreadable records."""
        return self.rows.num_rows + len(self.unreadable)

    def lines_of(self, index: int) -> int:
        """How many physical lines row ``index`` spans."""
        return 1 if self.line_counts is None else int(self.line_counts[index])

    def lines_of_rows(self, indexes: np.ndarray) -> int:
        """How many physical lines the rows ``indexes`` span together."""
        if self.line_counts is None:
            return len(indexes)
        return int(self.line_counts[indexes].sum())

    def source_ref(self, index: int) -> str:
        """``file:line`` (``file:first-last`` for a record over several lines, or
        ``file:row n``) of row ``index``."""
        first = self.positions[index]
        lines = self.lines_of(index)
        span = f"{first}" if lines == 1 else f"{first}-{first + lines - 1}"
        return f"{self.source}:{self.position_prefix}{span}"

    @property
    def source_refs(self) -> list[str]:
        """Every row's reference, in order."""
        return [self.source_ref(index) for index in range(self.rows.num_rows)]


def escaped_text(raw: bytes) -> str:
    """``raw`` as text a dead letter can hold: bytes that are not UTF-8 as ``\\xNN`` escapes, and
    NUL (which Postgres text and jsonb refuse) as ``\\x00``."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def count_data_lines(path: Path, file_format: str, header: bool = True) -> int:
    """The data lines a landing file holds, counted from its bytes (or Parquet's metadata),
    independently of the reader: what loaded rows plus dead letters must add up to.

    A CSV's (or JSON Lines file's) physical lines are its line feeds, plus a last line without
    one; a CSV's header is not data.
    """
    try:
        if file_format == "parquet":
            return pq.ParquetFile(path).metadata.num_rows
        breaks, last = 0, b"\n"
        with open_landing_file(path) as handle:
            while block := handle.read(_COUNT_BLOCK_BYTES):
                breaks += block.count(b"\n")
                last = block[-1:]
    except (pa.ArrowInvalid, OSError) as error:
        raise LandingFileError(f"landing file {path} cannot be read: {error}") from error
    return max(breaks + (last != b"\n") - header, 0)


def check_columns(path: Path, found: list[str], declared: list[str], extra: str) -> None:
    repeated = sorted({name for name in found if found.count(name) > 1})
    if repeated:
        raise LandingFileError(f"landing file {path} names the column(s) {repeated} twice")
    missing = [name for name in declared if name not in found]
    if missing:
        raise LandingFileError(f"landing file {path} lacks the declared column(s) {missing}")
    unexpected = [name for name in found if name not in declared]
    if unexpected and extra == "error":
        raise LandingFileError(
            f"landing file {path} has undeclared column(s) {unexpected}; declare them in the"
            " dataset spec, or set source.extra_columns: ignore"
        )


def _csv_header(path: Path, limits: RecordLimits, dialect: CsvDialect) -> list[str]:
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    try:
        with open_landing_file(path) as handle:
            first = handle.readline(limits.max_record_bytes + 1)
    except DamagedArchive as error:
        raise LandingFileError(str(error)) from error
    if len(first) > limits.max_record_bytes:
        raise LandingFileError(
            f"landing file {path} has a header line longer than source.max_record_bytes"
            f" ({limits.max_record_bytes}): it is no CSV header"
        )
    if not first.strip():
        raise LandingFileError(f"landing file {path} is empty: it has not even a header line")
    if b"\r" in first.rstrip(b"\r\n"):
        raise LandingFileError(
            f"landing file {path} breaks lines with a bare carriage return (CR, classic Mac);"
            " only LF and CRLF line breaks are read: convert the file"
        )
    encoding = "utf-8-sig" if dialect.encoding.startswith("utf-8") else dialect.encoding
    try:
        return next(
            csv.reader(
                [first.decode(encoding)],
                strict=True,
                delimiter=dialect.delimiter,
                quotechar=dialect.quote,
            )
        )
    except UnicodeDecodeError as error:
        label = "UTF-8" if dialect.encoding.startswith("utf-8") else dialect.encoding
        raise LandingFileError(f"landing file {path} has a header that is not {label}") from error
    except csv.Error as error:
        raise LandingFileError(
            f"landing file {path} has a header that is not CSV: {error}"
        ) from error


def _unreadable(source: str, record: Unreadable) -> UnreadableRecord:
    lines = (
        record.first_line
        if record.lines == 1
        else (f"{record.first_line}-{record.first_line + record.lines - 1}")
    )
    return UnreadableRecord(
        f"{source}:{lines}",
        {"line": escaped_text(record.text.rstrip(b"\r\n"))},
        record.error_class,
        record.message,
        record.detail,
        record.lines,
    )


def invalid_encoding(
    source_ref: str, raw: dict[str, Any], columns_bad: list[str], why: str, lines: int = 1
) -> UnreadableRecord:
    """A record set aside for fields that cannot be text: every field as text (bytes escaped),
    and the bad ones' bytes in base64."""
    return UnreadableRecord(
        source_ref=source_ref,
        payload={
            name: None
            if value is None
            else escaped_text(value)
            if isinstance(value, bytes)
            else str(value)
            for name, value in raw.items()
        },
        error_class="InvalidEncoding",
        message=f"field(s) {columns_bad} {why}",
        detail={
            "columns": columns_bad,
            "raw_base64": {
                name: base64.b64encode(raw[name]).decode()
                for name in columns_bad
                if isinstance(raw[name], bytes)
            },
        },
        lines=lines,
    )


def _as_text(raw: pa.Array, encoding: str) -> tuple[pa.Array, np.ndarray]:
    """Binary fields as text in ``encoding``, and which are not (UTF-8 is checked by Arrow; a
    single-byte encoding is decoded by Python, field by field)."""
    if encoding.startswith("utf-8"):
        return cast_isolating_failures(raw, pa.string())
    texts, failed = [], np.zeros(len(raw), dtype=bool)
    for index, value in enumerate(raw.to_pylist()):
        try:
            texts.append(None if value is None else value.decode(encoding))
        except UnicodeDecodeError:  # cp1252 leaves five bytes undefined
            texts.append(None)
            failed[index] = True
    return pa.array(texts, pa.string()), failed


def _decode(
    rows: pa.Table,
    source: str,
    lines: np.ndarray,
    counts: np.ndarray,
    has_nul: bool,
    encoding: str = "utf-8",
) -> tuple[pa.Table, np.ndarray, np.ndarray, list[UnreadableRecord]]:
    """Binary fields as text in ``encoding``; rows with a field that is not, or holds a NUL byte
    (Postgres text cannot; looked for only where the piece has one), are set aside with their
    bytes."""
    bad = np.zeros(rows.num_rows, dtype=bool)
    columns, bad_columns = [], {}
    for name in rows.column_names:
        raw = rows.column(name).combine_chunks()
        text, failed = _as_text(raw, encoding)
        if has_nul:
            failed |= pc.fill_null(pc.match_substring(raw, b"\x00"), False).to_numpy(
                zero_copy_only=False
            )
        columns.append(text)
        if failed.any():
            bad |= failed
            bad_columns[name] = failed
    decoded = pa.table(columns, names=rows.column_names)
    if not bad.any():
        return decoded, lines, counts, []
    unreadable = []
    for index in np.flatnonzero(bad):
        first, count = int(lines[index]), int(counts[index])
        unreadable.append(
            invalid_encoding(
                f"{source}:{first}" if count == 1 else f"{source}:{first}-{first + count - 1}",
                {name: rows.column(name)[index].as_py() for name in rows.column_names},
                [name for name, failed in bad_columns.items() if failed[index]],
                f"are not valid {'UTF-8' if encoding.startswith('utf-8') else encoding}"
                " or hold a NUL byte",
                count,
            )
        )
    keep = ~bad
    return decoded.filter(pa.array(keep)), lines[keep], counts[keep], unreadable


def _past_the_line(handle: BinaryIO, partial: bytes, block_bytes: int) -> tuple[bytes, int, bytes]:
    """Read on past the line ``partial`` begins, holding none of it but its first bytes: those,
    the line's length (line break included) and what follows it in the last block read."""
    head, length = partial[:KEPT_BYTES], len(partial)
    while block := handle.read(block_bytes):
        end = block.find(b"\n")
        line_part = block if end < 0 else block[: end + 1]
        head += line_part[: KEPT_BYTES - len(head)]
        length += len(line_part)
        if end >= 0:
            return head, length, block[end + 1 :]
    return head, length, b""


def _batch(
    path: Path, declared: list[str], piece: bytes, records: PieceRecords, encoding: str
) -> RawBatch:
    """The rows and unreadable records ``read_piece`` found in ``piece``, as text."""
    if records.tables:
        table = pa.concat_tables(records.tables)
        lines = np.concatenate(records.first_lines)
        counts = np.concatenate(records.line_counts)
    else:
        table = pa.table({name: pa.array([], pa.binary()) for name in declared})
        lines = counts = np.empty(0, dtype=np.int64)
    has_nul = b"\x00" in piece
    rows, lines, counts, undecodable = _decode(table, path.name, lines, counts, has_nul, encoding)
    unreadable = [_unreadable(path.name, record) for record in records.unreadable]
    return RawBatch(rows, path.name, lines, unreadable + undecodable, line_counts=counts)


def stream_csv(
    path: Path,
    declared: list[str],
    extra_columns: str = "error",
    block_bytes: int = CSV_BLOCK_BYTES,
    limits: RecordLimits = DEFAULT_RECORD_LIMITS,
    unterminated_last_line: str = "dead_letter",
    dialect: CsvDialect = DEFAULT_DIALECT,
) -> Iterator[RawBatch]:
    """The CSV at ``path`` in chunks of about ``block_bytes``, declared columns as text.

    Lines are numbered as in the file (a header is line 1; without one, ``dialect.header``
    false, the declared columns are the file's by position and line 1 is data). Memory is
    bounded by one piece plus one record: pyarrow's own streaming reader reads up to 32 blocks
    ahead (measured: 600 MB of Arrow memory on this file type), so the pieces are cut here, at
    line breaks, and a record still open at a piece's end is carried into the next. A line
    longer than ``limits.max_record_bytes`` is read past, never held: it becomes a
    ``RecordTooLarge`` unreadable line with its first bytes. A last line without a line break
    (a file cut short, or still being written) becomes a ``PossiblyTruncated`` unreadable line,
    unless ``unterminated_last_line`` is ``load``. An empty field is an empty string.
    """
    if dialect.header:
        header = _csv_header(path, limits, dialect)
        check_columns(path, header, declared, extra_columns)
    elif not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    else:
        header = declared
    try:
        with open_landing_file(path) as handle:
            if dialect.header:
                handle.readline(limits.max_record_bytes + 1)  # the header, read above
            first_line, carry = (2, b"") if dialect.header else (1, b"")
            while True:
                block = handle.read(block_bytes)
                if first_line == 1 and not carry and block.startswith(UTF8_BOM):
                    block = block[len(UTF8_BOM) :]  # a BOM before the first data line
                at_eof = not block
                data = carry + block
                cut = len(data) if at_eof else data.rfind(b"\n") + 1
                piece, rest = data[:cut], data[cut:]
                too_long = len(rest) > limits.max_record_bytes  # a line that cannot be a record
                tail = b""
                if at_eof and not piece.endswith(b"\n") and unterminated_last_line != "load":
                    piece, tail = piece[: piece.rfind(b"\n") + 1], piece[piece.rfind(b"\n") + 1 :]
                carry = rest
                if piece or tail:
                    records = (
                        read_piece(
                            piece,
                            first_line,
                            header,
                            declared,
                            limits,
                            at_eof or too_long,
                            dialect,
                        )
                        if piece
                        else PieceRecords([], [], [], [], 0, 0)
                    )
                    carry = piece[records.bytes_consumed :] + rest
                    first_line += records.lines_consumed
                    if tail:
                        records.unreadable.append(
                            Unreadable(
                                first_line,
                                1,
                                tail,
                                "PossiblyTruncated",
                                "the file does not end with a line break, so its last line may be"
                                " cut short (a file truncated, or still being written); if the"
                                " source writes files so, declare source.unterminated_last_line:"
                                " load",
                            )
                        )
                        first_line += 1
                    yield _batch(path, declared, piece, records, dialect.encoding)
                if at_eof:
                    return
                if too_long:
                    head, length, carry = _past_the_line(handle, rest, block_bytes)
                    letter = too_large(first_line, head, length, limits)
                    nothing_but = PieceRecords([], [], [], [letter], 0, 1)
                    yield _batch(path, declared, b"", nothing_but, dialect.encoding)
                    first_line += 1
    except DamagedArchive as error:  # nothing of the file is loaded: the write rolls back
        raise LandingFileError(str(error)) from error
