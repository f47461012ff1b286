"""A dataset's transform (the spec's optional ``module:function``), applied so a bad row costs only
itself.

A transform computes derived columns over a whole chunk in Arrow, so one value it cannot compute
(a derived decimal too large for its column) would fail the chunk and the partition. When the
transform raises Arrow's error for an invalid value, the chunk is bisected until the rows it
cannot transform are isolated; those become ``transform`` dead letters with the error, and the
rest are transformed as usual. Any other exception is a bug and is raised; so is an Arrow error
that every row of a chunk of several rows hits, since no single row is to blame for that.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from platform_assets.lib.ingestion.validation import RuleBroken


@dataclass(frozen=True)
class Transformed:
    """What a dataset's transform returns: its rows (same order and count as given, new columns
    allowed) and the rules rows broke; those rows are dead-lettered at stage ``transform``."""

    rows: pa.Table
    broken: list[RuleBroken]


Transform = Callable[[pa.Table], Transformed]


@dataclass(frozen=True)
class GuardedTransform:
    """A transform's result over the rows it could transform, which rows it could not (a mask
    over the rows given), and the error each of those rows raised."""

    result: Transformed
    crashed: np.ndarray
    errors: list[str]


def _padded(rules: list[RuleBroken], before: int, after: int) -> list[RuleBroken]:
    return [
        RuleBroken(
            rule.column,
            rule.check,
            rule.message,
            np.concatenate([np.zeros(before, bool), rule.rows, np.zeros(after, bool)]),
            rule.explain,
        )
        for rule in rules
    ]


def _bisect(transform: Transform, rows: pa.Table) -> GuardedTransform:
    try:
        return GuardedTransform(transform(rows), np.zeros(rows.num_rows, dtype=bool), [])
    except pa.ArrowInvalid as error:
        if rows.num_rows == 1:
            return GuardedTransform(
                Transformed(rows.slice(0, 0), []), np.ones(1, bool), [str(error)]
            )
    half = rows.num_rows // 2
    head, tail = _bisect(transform, rows.slice(0, half)), _bisect(transform, rows.slice(half))
    kept_head, kept_tail = head.result.rows.num_rows, tail.result.rows.num_rows
    parts = [part.result.rows for part in (head, tail) if part.result.rows.num_rows]
    merged = pa.concat_tables(parts) if parts else head.result.rows
    return GuardedTransform(
        Transformed(
            merged,
            _padded(head.result.broken, 0, kept_tail) + _padded(tail.result.broken, kept_head, 0),
        ),
        np.concatenate([head.crashed, tail.crashed]),
        head.errors + tail.errors,
    )


def apply_transform(transform: Transform, rows: pa.Table) -> GuardedTransform:
    """``transform`` over ``rows``, the rows it cannot transform set aside (module docstring)."""
    guarded = _bisect(transform, rows)
    if rows.num_rows > 1 and guarded.crashed.all():
        transform(rows)  # every row fails alike: raise the error itself, it is no row's fault
    return guarded
