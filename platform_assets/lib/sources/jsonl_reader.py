"""JSON Lines landing files: one JSON object per line, each declared column taken from its path.

Read line by line from the (possibly compressed) stream, in chunks of ``LINES_PER_CHUNK`` lines,
so memory stays one chunk and one line; a line longer than ``max_record_bytes`` is read past,
keeping its first bytes, as the CSV reader does. Numbers are read exactly (``Decimal``), and every
value becomes the text the one parser reads (``field_text``): a missing path or a JSON ``null``
is a missing value, an object or a list its JSON text (a ``json`` column stores it as ``jsonb``).

Every physical line ends up a row or an unreadable record: a line that is not JSON, not an
object, not UTF-8, or holds a NUL character (Postgres text cannot); an empty line; a last line
without its line break (unless declared normal). The accounting in physical lines holds as for
CSV: a line is a record.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import simplejson

from platform_assets.lib.sources.compressed import DamagedArchive, open_landing_file
from platform_assets.lib.sources.csv_records import KEPT_BYTES, RecordLimits, too_large
from platform_assets.lib.sources.field_text import field_text, value_at
from platform_assets.lib.sources.landing_readers import (
    LandingFileError,
    RawBatch,
    UnreadableRecord,
    escaped_text,
)

LINES_PER_CHUNK = 50_000


def _set_aside(source_ref: str, text: bytes, error_class: str, message: str) -> UnreadableRecord:
    return UnreadableRecord(
        source_ref,
        {"line": escaped_text(text.rstrip(b"\r\n")[:KEPT_BYTES])},
        error_class,
        message,
        {},
    )


def _fields(text: bytes, declared: list[str], paths: dict[str, str]) -> list[str] | str:
    """The declared columns' text from one line, or why the line holds no record."""
    stripped = text.rstrip(b"\r\n")
    if not stripped.strip():
        return "the line is empty"
    try:
        record = simplejson.loads(stripped.decode("utf-8"), use_decimal=True)
    except UnicodeDecodeError:
        return "the line is not UTF-8"
    except simplejson.JSONDecodeError as error:
        return f"the line is not JSON: {error}"
    if not isinstance(record, dict):
        return f"the line is a JSON {type(record).__name__}, not an object"
    fields = [field_text(value_at(record, paths.get(name, name))) for name in declared]
    if any("\x00" in value for value in fields):
        return "a value holds a NUL character, which Postgres text cannot"
    return fields


def _read_past(handle: BinaryIO, line: bytes, limit: int) -> tuple[bytes, int]:
    """The first bytes and the whole length of a line longer than ``limit``, read past."""
    head, length = line[:KEPT_BYTES], len(line)
    while not line.endswith(b"\n"):
        line = handle.readline(limit + 1)
        if not line:
            break
        length += len(line)
    return head, length


def stream_jsonl(
    path: Path,
    declared: list[str],
    paths: dict[str, str],
    limits: RecordLimits,
    unterminated_last_line: str = "dead_letter",
    lines_per_chunk: int = LINES_PER_CHUNK,
) -> Iterator[RawBatch]:
    """The JSON Lines file at ``path`` in chunks, the ``declared`` columns (each at its path in
    ``paths``, else its name) as text, lines numbered from 1."""
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    values: list[list[str]] = []
    positions: list[int] = []
    unreadable: list[UnreadableRecord] = []

    def chunk() -> RawBatch:
        columns = list(zip(*values, strict=True)) if values else [[] for _ in declared]
        rows = pa.table(
            {
                name: pa.array(column, pa.string())
                for name, column in zip(declared, columns, strict=True)
            }
        )
        batch = RawBatch(rows, path.name, np.array(positions, dtype=np.int64), list(unreadable))
        values.clear()
        positions.clear()
        unreadable.clear()
        return batch

    try:
        with open_landing_file(path) as handle:
            number = 0
            while line := handle.readline(limits.max_record_bytes + 1):
                number += 1
                ref = f"{path.name}:{number}"
                if len(line) > limits.max_record_bytes and not line.endswith(b"\n"):
                    head, length = _read_past(handle, line, limits.max_record_bytes)
                    letter = too_large(number, head, length, limits)
                    unreadable.append(_set_aside(ref, head, letter.error_class, letter.message))
                elif not line.endswith(b"\n") and unterminated_last_line != "load":
                    unreadable.append(
                        _set_aside(
                            ref,
                            line,
                            "PossiblyTruncated",
                            "the file does not end with a line break, so its last line may be"
                            " cut short; if the source writes files so, declare"
                            " source.unterminated_last_line: load",
                        )
                    )
                else:
                    fields = _fields(line, declared, paths)
                    if isinstance(fields, str):
                        unreadable.append(_set_aside(ref, line, "MalformedJsonLine", fields))
                    else:
                        values.append(fields)
                        positions.append(number)
                if len(positions) + len(unreadable) >= lines_per_chunk:
                    yield chunk()
    except DamagedArchive as error:  # nothing of the file is loaded: the write rolls back
        raise LandingFileError(str(error)) from error
    yield chunk()
