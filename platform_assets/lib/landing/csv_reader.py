"""Reading a landing CSV as text, exactly as it is, so the raw layer keeps every value."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


class LandingFileError(Exception):
    """A landing file is missing or cannot be read as CSV at all; the run must stop and say why."""


@dataclass(frozen=True)
class MalformedLine:
    """A line that does not split into the header's fields."""

    line: int
    text: str
    expected_fields: int
    found_fields: int


@dataclass(frozen=True)
class LandingFile:
    """The rows read (every field as text, plus ``_source_line``) and the lines that were not."""

    rows: pa.Table
    malformed: list[MalformedLine]

    @property
    def lines_read(self) -> int:
        """Data lines in the file: parsed rows plus malformed lines."""
        return self.rows.num_rows + len(self.malformed)


def read_landing_csv(path: Path, expected_columns: list[str]) -> LandingFile:
    """Every field of ``path`` as a string column, plus ``_source_line`` (1-based, header is 1).

    Values are not parsed here: typing and validation happen downstream, where a bad value is
    rejected with a reason. A line with the wrong number of fields is kept aside as a
    ``MalformedLine`` (for the dead-letter queue) and the rest is read. A missing or empty file,
    one whose header differs from ``expected_columns``, or invalid UTF-8 fails with the file named.
    Line numbers assume one record per physical line (no newlines inside quoted fields).
    """
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    malformed: list[MalformedLine] = []

    def keep_aside(row: pacsv.InvalidRow) -> str:
        malformed.append(
            MalformedLine(row.number, row.text, row.expected_columns, row.actual_columns)
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            # Single-threaded so pyarrow reports the line number of a malformed line.
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep_aside),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(expected_columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise LandingFileError(f"landing file {path} cannot be read as CSV: {error}") from error
    if table.column_names != expected_columns:
        raise LandingFileError(
            f"landing file {path} has columns {table.column_names}, expected {expected_columns}"
        )
    total = table.num_rows + len(malformed)
    lines = np.setdiff1d(np.arange(2, total + 2), [m.line for m in malformed])
    return LandingFile(table.append_column("_source_line", pa.array(lines, pa.int64())), malformed)
