"""The columns a dataset's table holds, as the IO manager creates them from the spec."""

import pyarrow as pa

from platform_assets.lib.ingestion.parsing import arrow_field
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.row_hash import ROW_HASH_COLUMN


def stored_schema(spec: DatasetSpec) -> pa.Schema:
    """The declared columns typed, those the spec's transform adds (found by running it on no
    rows), then the row hash: what a load writes, to compare with what a table holds."""
    rows = pa.schema([arrow_field(column) for column in spec.columns]).empty_table()
    transform = spec.transform_function()
    if transform is not None:
        rows = transform(rows).rows
    return rows.schema.append(pa.field(ROW_HASH_COLUMN, pa.binary(16)))
