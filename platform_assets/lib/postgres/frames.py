"""Conversion between pandas frames and Arrow tables, the IO manager's wire format."""

from decimal import Decimal

import pandas as pd
import pyarrow as pa

_NULLABLE_DTYPES = {
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow, its index dropped (a frame's index is never a table column)."""
    return pa.Table.from_pandas(frame, preserve_index=False)


def _decimal_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """A frame with nullable integer/boolean dtypes and ``Decimal`` for numeric columns.

    ADBC returns Postgres ``numeric`` as an opaque extension over its text form; it is turned back
    into ``Decimal`` so money keeps its exact value.
    """
    numeric = [
        field.name
        for field in table.schema
        if isinstance(field.type, pa.BaseExtensionType)
        and (field.metadata or {}).get(b"POSTGRESQL:type") == b"numeric"
    ]
    plain = table.select([name for name in table.column_names if name not in numeric])
    frame = plain.to_pandas(types_mapper=_NULLABLE_DTYPES.get)
    for name in numeric:
        storage = table.column(name).combine_chunks().storage
        frame[name] = pd.Series([_decimal_or_none(v) for v in storage.to_pylist()], dtype=object)
    return frame[table.column_names]
