"""Reading a landing CSV as text, exactly as it is, so the raw layer keeps every value."""

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv


class LandingFileError(Exception):
    """A landing file is missing or cannot be read as CSV at all; the run must stop and say why."""


def read_landing_csv(path: Path, expected_columns: list[str]) -> pa.Table:
    """Every field of ``path`` as a string column, plus ``_source_line`` (1-based, header is 1).

    Values are not parsed here: typing and validation happen downstream, where a bad value is
    rejected with a reason instead of making the whole file unreadable. A file whose header does
    not match ``expected_columns``, a ragged line or invalid UTF-8 fails with the file named.
    """
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=True),
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
    return table.append_column("_source_line", pa.array(range(2, table.num_rows + 2), pa.int64()))
