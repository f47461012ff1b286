"""Parquet landing files in row batches, every declared column rendered as text: one parser types
every format, and a value that cannot be text costs its row alone."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from platform_assets.lib.arrow_cast import cast_isolating_failures
from platform_assets.lib.sources.landing_readers import (
    LandingFileError,
    RawBatch,
    UnreadableRecord,
    check_columns,
    invalid_encoding,
)

PARQUET_BATCH_ROWS = 262_144


def _unreadable_as_text(path: Path, declared: list[str], declared_types: dict[str, str]) -> None:
    """Refuse a Parquet file holding a declared column Arrow cannot render as text at all (a
    list, a struct, a map): no value of it could be read, so the file is not what the spec says."""
    schema = pq.read_schema(path)
    for name in declared:
        kind = schema.field(name).type
        try:
            pc.cast(pa.array([], kind), pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            wanted = declared_types.get(name, "text")
            raise LandingFileError(
                f"landing file {path}: column {name} is {kind} in the file, which cannot be read"
                f" as the declared {wanted} ({error})"
            ) from error


def _parquet_as_text(
    table: pa.Table, declared: list[str], source: str, numbers: np.ndarray
) -> tuple[pa.Table, np.ndarray, list[UnreadableRecord]]:
    """The declared columns as text; a row holding a value that cannot be text (bytes that are
    not UTF-8) is set aside alone, with its raw values."""
    texts, bad, bad_columns = [], np.zeros(table.num_rows, dtype=bool), {}
    for name in declared:
        text, failed = cast_isolating_failures(table.column(name).combine_chunks(), pa.string())
        texts.append(text)
        if failed.any():
            bad |= failed
            bad_columns[name] = failed
    rows = pa.table(texts, names=declared)
    if not bad.any():
        return rows, numbers, []
    unreadable = [
        invalid_encoding(
            f"{source}:row {numbers[index]}",
            {name: table.column(name)[int(index)].as_py() for name in declared},
            [name for name, failed in bad_columns.items() if failed[index]],
            "cannot be read as text (not valid UTF-8)",
        )
        for index in np.flatnonzero(bad)
    ]
    keep = pa.array(~bad)
    return rows.filter(keep), numbers[~bad], unreadable


def stream_parquet(
    path: Path,
    declared: list[str],
    extra_columns: str = "error",
    batch_rows: int = PARQUET_BATCH_ROWS,
    declared_types: dict[str, str] | None = None,
) -> Iterator[RawBatch]:
    """The Parquet file at ``path`` in row batches, declared columns rendered as text. A value
    that cannot be text makes its row an unreadable record, alone; a column that cannot be text
    at all (``declared_types`` names the spec's type in the message) fails the file."""
    if not path.is_file():
        raise LandingFileError(f"landing file {path} does not exist")
    try:
        parquet = pq.ParquetFile(path)
        check_columns(path, parquet.schema_arrow.names, declared, extra_columns)
        _unreadable_as_text(path, declared, declared_types or {})
        first_row = 1
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=declared):
            # Arrow renders timestamps with their offset ("…00.123000Z"), as the parser expects.
            numbers = np.arange(first_row, first_row + batch.num_rows)
            first_row += batch.num_rows
            table = pa.Table.from_batches([batch])
            rows, kept, unreadable = _parquet_as_text(table, declared, path.name, numbers)
            yield RawBatch(rows, path.name, kept, unreadable, position_prefix="row ")
    except (pa.ArrowInvalid, OSError) as error:
        raise LandingFileError(f"landing file {path} cannot be read as Parquet: {error}") from error
