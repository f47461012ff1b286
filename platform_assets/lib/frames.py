"""Conversion between pandas frames and Arrow tables, the IO manager's wire format."""

import json
from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import pyarrow as pa

from platform_assets.lib.jsonb import JSONB_METADATA, jsonb_bytes

_NULLABLE_DTYPES = {
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _is_json_column(values: pd.Series) -> bool:
    if values.dtype != object:
        return False
    first = values.dropna().head(1)
    return not first.empty and isinstance(first.iloc[0], dict | list)


FRAME_CHUNK_ROWS = 262_144  # a frame is converted this many rows at a time, as the COPY goes


def frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow, its index dropped; dict/list columns become jsonb-ready binary."""
    return pa.concat_tables(frame_to_arrow_chunks(frame))


def frame_to_arrow_chunks(frame: pd.DataFrame, rows: int = FRAME_CHUNK_ROWS) -> Iterator[pa.Table]:
    """The frame as Arrow tables of at most ``rows`` rows each (at least one, even if empty),
    converted one at a time when asked for, all with the types of the whole frame.

    Converting lazily lets the write overlap the conversion with the COPY of the rows before, and
    never holds an Arrow copy of the whole frame.
    """
    json_columns = [name for name in frame.columns if _is_json_column(frame[name])]
    plain = frame.drop(columns=json_columns)
    schema = pa.Schema.from_pandas(plain, preserve_index=False)
    for start in range(0, max(len(frame), 1), rows):
        table = pa.Table.from_pandas(
            plain.iloc[start : start + rows], schema=schema, preserve_index=False
        )
        for name in json_columns:
            values = pa.array(
                [jsonb_bytes(v) for v in frame[name].iloc[start : start + rows]], pa.binary()
            )
            table = table.append_column(
                pa.field(name, pa.binary(), metadata=JSONB_METADATA), values
            )
        yield table.select([str(name) for name in frame.columns])


def _postgres_type_of(field: pa.Field) -> bytes | None:
    return (field.metadata or {}).get(b"POSTGRESQL:type")


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """A frame with nullable integer/boolean dtypes, ``Decimal`` numerics, parsed jsonb.

    ADBC returns ``numeric`` and ``jsonb`` as extension types over their text form; they are turned
    back into ``Decimal`` and Python objects so values round-trip exactly.
    """
    converters = {b"numeric": Decimal, b"jsonb": json.loads, b"json": json.loads}
    special = {
        field.name: converters[_postgres_type_of(field)]
        for field in table.schema
        if isinstance(field.type, pa.BaseExtensionType) and _postgres_type_of(field) in converters
    }
    plain = table.select([name for name in table.column_names if name not in special])
    frame = plain.to_pandas(types_mapper=_NULLABLE_DTYPES.get)
    for name, convert in special.items():
        storage = table.column(name).combine_chunks().storage
        frame[name] = pd.Series(
            [None if v is None else convert(v) for v in storage.to_pylist()], dtype=object
        )
    return frame[table.column_names]
