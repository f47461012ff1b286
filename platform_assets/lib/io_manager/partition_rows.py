"""Which partition each row of a frame belongs to: pure Arrow and numpy, no database.

Used to refuse rows outside the partitions being written and to count rows per partition, so the
per-partition figures of a range run are each partition's own.
"""

from datetime import date, datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.tables.table_slice import TableSlice

OUTSIDE = -1
_KEY_SEPARATOR = "\x1f"


def _integer_type(column_type: pa.DataType) -> pa.DataType:
    """The Arrow type whose integers order a time column: days, or microseconds since the epoch."""
    if pa.types.is_date(column_type):
        return pa.date32()
    return pa.timestamp("us", tz=column_type.tz)


def _integers(values: pa.Array, unit: pa.DataType) -> pa.Array:
    """``values`` in ``unit`` (``_integer_type``'s) as int64."""
    in_unit = values.cast(unit)
    return (in_unit.cast(pa.int32()) if unit == pa.date32() else in_unit).cast(pa.int64())


def _as_int64(values: pa.Array) -> np.ndarray:
    """The column's values as comparable integers (nulls as 0: they are outside anyway)."""
    return _integers(values, _integer_type(values.type)).fill_null(0).to_numpy()


@lru_cache(maxsize=16)
def _windows_as_int64(
    bounds: tuple[tuple[date | datetime, date | datetime], ...], column_type: pa.DataType
) -> tuple[np.ndarray, np.ndarray]:
    """Each window's start and end as integers comparable with ``_as_int64``'s; computed once per
    range, not once per chunk (a 333-day range writes 333 chunks)."""
    unit = _integer_type(column_type)
    starts, ends = zip(*bounds, strict=True)
    return (
        _integers(pa.array(starts, unit), unit).to_numpy(),
        _integers(pa.array(ends, unit), unit).to_numpy(),
    )


def assign_partitions(
    data: pa.Table, table_slice: TableSlice, bounds: list[tuple[object, object]]
) -> np.ndarray:
    """Index into ``table_slice.partitions`` for every row, or ``OUTSIDE``.

    ``bounds`` are each time-window partition's ``(low, high)`` typed like the partition column
    (unused for key partitions). A null partition value is always outside.
    """
    if not table_slice.partitions:
        return np.zeros(data.num_rows, dtype=np.int64)
    columns = [data.column(name).combine_chunks() for name in table_slice.partition_columns]
    if any(pa.types.is_null(column.type) for column in columns):
        return np.full(data.num_rows, OUTSIDE, dtype=np.int64)
    valid = np.logical_and.reduce(
        [pc.is_valid(column).to_numpy(zero_copy_only=False) for column in columns]
    )
    if table_slice.partitions[0].window is not None:
        values = _as_int64(columns[0])
        starts, ends = _windows_as_int64(tuple(map(tuple, bounds)), columns[0].type)
        order = np.argsort(starts)
        slot = np.searchsorted(starts[order], values, side="right") - 1
        candidate = order[np.clip(slot, 0, None)]
        inside = (slot >= 0) & (values < ends[candidate]) & valid
        return np.where(inside, candidate, OUTSIDE)
    as_text = [column.cast(pa.string()) for column in columns]
    row_keys = (
        as_text[0] if len(as_text) == 1 else pc.binary_join_element_wise(*as_text, _KEY_SEPARATOR)
    )
    wanted = pa.array(_KEY_SEPARATOR.join(p.values or ()) for p in table_slice.partitions)
    found = pc.index_in(row_keys, value_set=wanted)
    return np.where(valid, found.fill_null(OUTSIDE).to_numpy(zero_copy_only=False), OUTSIDE)
