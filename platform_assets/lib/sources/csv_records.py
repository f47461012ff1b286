"""CSV text split into records (RFC 4180, or another delimiter and quote: ``CsvDialect``), each with
the physical lines it spans, bounded in size.

A piece of a file (whole lines) is read in runs. Lines that cannot start or continue a quoted
field spanning lines (an even number of quotes, each where RFC 4180 puts one, no bare carriage
return, not empty) are parsed in bulk by pyarrow, one record per line; the count it returns is
checked against the lines given, so a parser that joined lines is caught and its run re-read
here. Every other line starts a record read with Python's ``csv`` module in strict mode: quoted
commas, doubled quotes and line breaks inside quotes are read as RFC 4180 says, but a record may
only grow past its first line within ``RecordLimits``. A quote that never closes, or closes into a
record of the wrong shape, makes only its own line unreadable, and reading resumes on the next
line, so one stray quote can never swallow the lines after it.

Every line of the piece ends up in exactly one record or one unreadable line: the reader's
accounting in physical lines rests on that.
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# The bound on a record is ours (``RecordLimits``); the csv module's own 128 KiB field limit
# would turn a long but valid single-line field into an error.
csv.field_size_limit(2**31 - 1)

_LF, _CR = ord("\n"), ord("\r")
KEPT_BYTES = 4096  # what a dead letter keeps of a line too long to load


@dataclass(frozen=True)
class RecordLimits:
    """How long a record may be: ``max_record_bytes`` for a line or a record over several lines
    (a quoted field with line breaks), and ``max_record_lines`` lines.

    A longer line is never held whole: it becomes a ``RecordTooLarge`` unreadable line keeping
    its first ``KEPT_BYTES`` and its length, so memory stays bounded whatever the file holds.
    """

    max_record_bytes: int = 16 << 20
    max_record_lines: int = 1_000


DEFAULT_RECORD_LIMITS = RecordLimits()


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: its field ``delimiter`` and ``quote`` (one character each, as
    RFC 4180 uses ``,`` and ``"``), the ``encoding`` of its text, and whether its first line is a
    ``header`` naming the columns (else the columns are the declared ones, by position, and the
    first line is data)."""

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    header: bool = True


DEFAULT_DIALECT = CsvDialect()


@dataclass(frozen=True)
class Unreadable:
    """Physical lines that are no record: where, how many, what they hold, and why."""

    first_line: int
    lines: int
    text: bytes
    error_class: str
    message: str
    detail: dict = field(default_factory=dict)


@dataclass
class PieceRecords:
    """What a piece held: the records' declared fields (binary columns), each record's first
    line and line count, the unreadable lines, and how much of the piece was consumed (the rest
    is the start of a record that continues in the next piece)."""

    tables: list[pa.Table]
    first_lines: list[np.ndarray]
    line_counts: list[np.ndarray]
    unreadable: list[Unreadable]
    bytes_consumed: int
    lines_consumed: int


def too_large(first_line: int, head: bytes, length: int, limits: RecordLimits) -> Unreadable:
    """The unreadable line ``first_line`` of ``length`` bytes, longer than a record may be: its
    first ``KEPT_BYTES`` (``head``) and its length are all that is kept."""
    return Unreadable(
        first_line,
        1,
        head[:KEPT_BYTES],
        "RecordTooLarge",
        f"the line is {length} bytes, more than a record may be (source.max_record_bytes:"
        f" {limits.max_record_bytes}); its first {min(length, KEPT_BYTES)} bytes are kept",
        {"line_bytes": length, "kept_bytes": min(length, KEPT_BYTES)},
    )


def line_bounds(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, line break included) offsets of every line in ``data``."""
    breaks = np.flatnonzero(data == _LF)
    ends = breaks + 1
    if len(data) and (not len(breaks) or breaks[-1] != len(data) - 1):
        ends = np.append(ends, len(data))  # a last line without a line break
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return starts, ends.astype(np.int64)


def _lines_holding(positions: np.ndarray, starts: np.ndarray, n_lines: int) -> np.ndarray:
    """Per line, whether any of the sorted byte ``positions`` falls in it."""
    held = np.zeros(n_lines, dtype=bool)
    held[np.searchsorted(starts, positions, side="right") - 1] = True
    return held


def careful_lines(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, dialect: CsvDialect = DEFAULT_DIALECT
) -> np.ndarray:
    """Lines that the bulk parser must not read alone: an odd number of quotes (a quoted field
    may continue on the next line), a quote where RFC 4180 has none (neither opening, closing nor
    doubled), a bare carriage return, or nothing at all.

    Whole-piece byte masks, not per-quote gathers: an export that quotes every field has ~20
    quotes a line.
    """
    n_lines = len(starts)
    careful = np.zeros(n_lines, dtype=bool)
    if not n_lines:
        return careful
    is_quote = data == ord(dialect.quote)
    line_feed = data == _LF
    if is_quote.any():
        careful |= np.bitwise_xor.reduceat(is_quote.view(np.uint8), starts).astype(bool)
        may_border = is_quote | line_feed | (data == ord(dialect.delimiter))
        after_ok = may_border | (data == _CR)
        misplaced = is_quote.copy()
        misplaced[1:] &= ~may_border[:-1]  # not opening (after a comma, a line start or a quote)
        misplaced[:-1] &= ~after_ok[1:]  # nor closing (before a comma, a line end or a quote)
        careful |= _lines_holding(np.flatnonzero(misplaced), starts, n_lines)
    is_return = data == _CR
    if is_return.any():
        bare = is_return.copy()
        bare[:-1] &= ~line_feed[1:]
        careful |= _lines_holding(np.flatnonzero(bare), starts, n_lines)
    length = ends - starts
    last = data[ends - 1]
    content = length - (last == _LF) - ((length >= 2) & (data[np.maximum(ends - 2, 0)] == _CR))
    careful |= content <= 0
    return careful


def _bulk_parse(
    text: bytes, header: list[str], declared: list[str], first_line: int, dialect: CsvDialect
) -> tuple[pa.Table, np.ndarray, list[Unreadable]] | None:
    """Lines known to hold one record each, parsed by pyarrow; None if it disagrees on that."""
    malformed: list[Unreadable] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        malformed.append(_wrong_shape(first_line + row.number - 1, row.text.encode(), row))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(text),
            # Serial parsing is what makes pyarrow report each bad line's number.
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=header, block_size=len(text) + 1
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter,
                quote_char=dialect.quote,
                invalid_row_handler=set_aside,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.binary()),
                include_columns=declared,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    n_lines = text.count(b"\n") + (not text.endswith(b"\n"))
    if table.num_rows + len(malformed) != n_lines:
        return None
    bad = np.array([m.first_line for m in malformed], dtype=np.int64)
    lines = np.setdiff1d(np.arange(first_line, first_line + n_lines), bad, assume_unique=True)
    return table, lines, malformed


def _wrong_shape(line: int, text: bytes, row: pacsv.InvalidRow) -> Unreadable:
    return Unreadable(
        line,
        1,
        text,
        "MalformedCsvLine",
        f"expected {row.expected_columns} fields, found {row.actual_columns}",
        {"expected_fields": row.expected_columns, "found_fields": row.actual_columns},
    )


class _NeedMore(Exception):
    """The piece ended inside a quoted field that may close in the next piece."""


class _TooLong(Exception):
    """The record would grow past its limits."""


@dataclass(frozen=True)
class _Attempt:
    """A record read from one line on: its fields (None if it is no valid record, with why), and
    how many lines the attempt read."""

    fields: list[str] | None
    lines_read: int
    error_class: str = ""
    message: str = ""


def _one_record(
    piece: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    index: int,
    n_fields: int,
    limits: RecordLimits,
    at_eof: bool,
    dialect: CsvDialect,
) -> _Attempt:
    """The record starting at line ``index``, read with the csv module in strict mode."""
    used = 0

    def lines() -> Iterator[str]:
        nonlocal used
        size = 0
        for k in range(index, len(starts)):
            size += int(ends[k] - starts[k])
            if used and (used >= limits.max_record_lines or size > limits.max_record_bytes):
                raise _TooLong
            used += 1
            yield piece[starts[k] : ends[k]].decode("utf-8", "surrogateescape")
        if not at_eof:
            raise _NeedMore

    try:
        fields = next(
            csv.reader(lines(), strict=True, delimiter=dialect.delimiter, quotechar=dialect.quote)
        )
    except _TooLong:
        return _Attempt(
            None,
            used,
            "UnclosedQuote",
            f"a quoted field opened on this line is still open after {used} line(s); records"
            f" may span at most {limits.max_record_lines} lines and {limits.max_record_bytes}"
            " bytes (source.max_record_lines / max_record_bytes)",
        )
    except csv.Error as error:
        if used > 1 or "end of data" in str(error):
            return _Attempt(
                None,
                used,
                "UnclosedQuote",
                f"a quoted field opened on this line does not close into a valid record ({error})",
            )
        return _Attempt(None, used, "MalformedCsvLine", f"not a valid CSV record: {error}")
    if not fields:
        return _Attempt(None, used, "EmptyCsvLine", "the line is empty")
    if len(fields) != n_fields:
        if used > 1:
            return _Attempt(
                None,
                used,
                "UnclosedQuote",
                f"a quoted field opened on this line closes {used - 1} line(s) later into"
                f" {len(fields)} fields instead of {n_fields}",
            )
        return _Attempt(
            None, used, "MalformedCsvLine", f"expected {n_fields} fields, found {len(fields)}"
        )
    return _Attempt(fields, used)


def read_piece(
    piece: bytes,
    first_line: int,
    header: list[str],
    declared: list[str],
    limits: RecordLimits,
    at_eof: bool,
    dialect: CsvDialect = DEFAULT_DIALECT,
) -> PieceRecords:
    """The records of ``piece`` (whole lines, the first numbered ``first_line``), in file order."""
    data = np.frombuffer(piece, dtype=np.uint8)
    starts, ends = line_bounds(data)
    careful = careful_lines(data, starts, ends, dialect)
    oversized = (ends - starts) > limits.max_record_bytes
    careful |= oversized
    picked = [header.index(name) for name in declared]
    out = PieceRecords([], [], [], [], 0, 0)
    pending: list[tuple[list[str], int, int]] = []

    def flush() -> None:
        if not pending:
            return
        columns = [
            pa.array([fields[i].encode("utf-8", "surrogateescape") for fields, _, _ in pending])
            for i in picked
        ]
        out.tables.append(pa.table(columns, names=declared))
        out.first_lines.append(np.array([line for _, line, _ in pending], dtype=np.int64))
        out.line_counts.append(np.array([count for _, _, count in pending], dtype=np.int64))
        pending.clear()

    single = RecordLimits(limits.max_record_bytes, max_record_lines=1)
    index, n_lines, alone_until = 0, len(starts), 0
    while index < n_lines:
        if not careful[index]:
            stop = index + int(np.argmax(careful[index:])) if careful[index:].any() else n_lines
            text = piece[starts[index] : ends[stop - 1]]
            parsed = _bulk_parse(text, header, declared, first_line + index, dialect)
            if parsed is None:
                careful[index:stop] = True  # re-read line by line below
                continue
            flush()
            table, lines, malformed = parsed
            out.tables.append(table)
            out.first_lines.append(lines)
            out.line_counts.append(np.ones(len(lines), dtype=np.int64))
            out.unreadable += malformed
            index = stop
            continue
        if oversized[index]:
            head = piece[starts[index] : starts[index] + KEPT_BYTES]
            out.unreadable.append(
                too_large(first_line + index, head, int(ends[index] - starts[index]), limits)
            )
            index += 1
            continue
        limit = single if index < alone_until else limits
        try:
            attempt = _one_record(piece, starts, ends, index, len(header), limit, at_eof, dialect)
        except _NeedMore:
            break
        if attempt.fields is not None:
            pending.append((attempt.fields, first_line + index, attempt.lines_read))
            index += attempt.lines_read
            continue
        text = piece[starts[index] : ends[index]]
        out.unreadable.append(
            Unreadable(first_line + index, 1, text, attempt.error_class, attempt.message)
        )
        # The other lines the failed attempt read are read again, each as a record alone: read
        # from inside a quoted field, a good line could be joined to garbage.
        alone_until = max(alone_until, index + attempt.lines_read)
        index += 1
    flush()
    out.lines_consumed = index
    out.bytes_consumed = int(ends[index - 1]) if index else 0
    return out
