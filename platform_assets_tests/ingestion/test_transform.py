"""A dataset's transform applied so that a bad row costs only itself, and a bug is never hidden."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from platform_assets.lib.ingestion.transform import Transformed, apply_transform
from platform_assets.lib.ingestion.validation import RuleBroken

ROWS = pa.table({"price": pa.array([1, 2, 10**17, 4, 10**17, 6], pa.int64())})


def doubled(rows: pa.Table) -> Transformed:
    """price * 100 in cents: overflows 64 bits for the two huge prices."""
    cents = pc.multiply_checked(rows.column("price"), 100)
    over = pc.greater(rows.column("price"), 5).to_numpy(zero_copy_only=False)
    rule = RuleBroken("price", "max", "price above 5", over)
    return Transformed(rows.append_column("cents", cents.cast(pa.decimal128(20, 0))), [rule])


def test_rows_the_transform_cannot_compute_are_set_aside_alone() -> None:
    guarded = apply_transform(doubled, ROWS)

    assert guarded.crashed.tolist() == [False, False, True, False, True, False]
    assert len(guarded.errors) == 2 and all("overflow" in e for e in guarded.errors)
    assert guarded.result.rows.column("price").to_pylist() == [1, 2, 4, 6]
    assert guarded.result.rows.column("cents").to_pylist() == [100, 200, 400, 600]
    assert np.logical_or.reduce([r.rows for r in guarded.result.broken]).tolist() == [
        False,
        False,
        False,
        True,
    ]


def test_an_error_every_row_hits_is_raised() -> None:
    with pytest.raises(pa.ArrowInvalid):
        apply_transform(doubled, ROWS.filter(pc.greater(ROWS.column("price"), 10)))


def test_any_other_exception_is_a_bug_and_is_raised() -> None:
    def buggy(rows: pa.Table) -> Transformed:
        return rows["no_such_column"]

    with pytest.raises(KeyError):
        apply_transform(buggy, ROWS)
