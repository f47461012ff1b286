"""Casting Arrow arrays value by value: a value that cannot be cast is nulled and marked alone."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def cast_isolating_failures(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast ``values`` to ``target``; null and mark each value that cannot be cast.

    The fast path is one cast of the whole array. When it fails, bisection finds the bad values,
    so an array with k bad values costs about k·log(n) small casts, never a per-value loop.
    """
    try:
        return pc.cast(values, target), np.zeros(len(values), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            return pa.nulls(1, target), np.ones(1, dtype=bool)
    half = len(values) // 2
    head, head_failed = cast_isolating_failures(values.slice(0, half), target)
    tail, tail_failed = cast_isolating_failures(values.slice(half), target)
    return pa.concat_arrays([head, tail]), np.concatenate([head_failed, tail_failed])
