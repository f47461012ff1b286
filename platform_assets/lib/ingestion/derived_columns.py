"""Computing a spec's derived columns on a chunk, vectorised in Arrow, before validation.

Each derived column is written as text, exactly as a source would have sent it, so the column's
declared type and rules then apply to it as to any other: ``2026-13-01`` from parts is refused as
"not a calendar date". A value the derivation itself cannot compute (a clock that is not
``HHMM``, a local time that does not exist or happens twice) is refused by a ``derive`` rule
naming why; a missing input gives a missing value. Nothing is rounded or guessed.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.ingestion.derivation_spec import (
    Cast,
    Concat,
    Constant,
    DateFromParts,
    Derivation,
    LocalDate,
    LocalTimestamp,
    TimestampFromDateAndClock,
)
from platform_assets.lib.ingestion.parsing import parse_column, true_mask
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import RuleBroken

_CLOCK = r"^\d{1,4}$"
_TEXT = pa.string()


def derive_columns(raw: pa.Table, spec: DatasetSpec) -> tuple[pa.Table, list[RuleBroken]]:
    """``raw`` (the source columns as text) with every derived column appended as text, and
    the rules rows broke while deriving."""
    derived, broken = raw, []
    for column in spec.columns:
        if column.derive is None:
            continue
        values, refused = _derive(column.derive, raw, spec)
        derived = derived.append_column(pa.field(column.name, _TEXT), values)
        broken.extend(
            RuleBroken(column.name, "derive", f"{column.name}: {why}", mask)
            for why, mask in refused
            if mask.any()
        )
    return derived, broken


def _typed(raw: pa.Table, spec: DatasetSpec, name: str) -> pa.Array:
    """Source column ``name`` typed as declared (unparseable values null: the column's own
    type rule reports them)."""
    column = spec.column(name)
    assert column is not None  # the spec's validator guarantees it
    typed, _ = parse_column(raw.column(name).combine_chunks(), column)
    return typed


def _derive(
    derive: Derivation, raw: pa.Table, spec: DatasetSpec
) -> tuple[pa.Array, list[tuple[str, np.ndarray]]]:
    """One derivation's text values, and ``(why, rows)`` for what it refused."""
    if isinstance(derive, DateFromParts):
        widths = ((derive.year, 4), (derive.month, 2), (derive.day, 2))
        parts = [
            pc.utf8_lpad(_typed(raw, spec, name).cast(_TEXT), width=width, padding="0")
            for name, width in widths
        ]
        return pc.binary_join_element_wise(*parts, "-"), []
    if isinstance(derive, LocalDate | LocalTimestamp):
        local = _typed(raw, spec, derive.column).cast(pa.timestamp("us", tz=derive.timezone))
        shape = "%Y-%m-%d" if isinstance(derive, LocalDate) else "%Y-%m-%dT%H:%M:%S"
        return pc.strftime(local, format=shape), []
    if isinstance(derive, TimestampFromDateAndClock):
        return _instant_of_day_and_clock(derive, raw, spec)
    if isinstance(derive, Cast):
        return raw.column(derive.column).combine_chunks(), []
    if isinstance(derive, Constant):
        return pa.array([derive.value] * raw.num_rows, _TEXT), []
    assert isinstance(derive, Concat)
    texts = [raw.column(name).combine_chunks() for name in derive.columns]
    return pc.binary_join_element_wise(*texts, derive.separator), []


def _instant_of_day_and_clock(
    derive: TimestampFromDateAndClock, raw: pa.Table, spec: DatasetSpec
) -> tuple[pa.Array, list[tuple[str, np.ndarray]]]:
    day = pc.strftime(_typed(raw, spec, derive.date), format="%Y-%m-%d")
    clock_text = pc.utf8_trim_whitespace(raw.column(derive.clock).combine_chunks())
    shaped = true_mask(pc.match_substring_regex(clock_text, _CLOCK))
    clock = pc.utf8_lpad(clock_text, width=4, padding="0")
    hours, minutes = pc.utf8_slice_codeunits(clock, 0, 2), pc.utf8_slice_codeunits(clock, 2, 4)
    in_range = true_mask(
        pc.and_(
            pc.less(pc.cast(pc.if_else(pa.array(shaped), hours, "99"), pa.int8()), 24),
            pc.less(pc.cast(pc.if_else(pa.array(shaped), minutes, "99"), pa.int8()), 60),
        )
    )
    present = true_mask(pc.is_valid(clock_text)) & true_mask(pc.not_equal(clock_text, ""))
    bad_clock = present & ~(shaped & in_range)
    wall = pc.binary_join_element_wise(
        day, pc.binary_join_element_wise(hours, minutes, pa.scalar("00"), ":"), "T"
    )
    wall = pc.if_else(pa.array(~bad_clock), wall, pa.scalar(None, _TEXT))
    naive = pc.cast(wall, pa.timestamp("us"))
    earliest = pc.assume_timezone(
        naive, timezone=derive.timezone, ambiguous="earliest", nonexistent="earliest"
    )
    latest = pc.assume_timezone(
        naive, timezone=derive.timezone, ambiguous="latest", nonexistent="latest"
    )
    unclear = true_mask(pc.not_equal(earliest, latest))
    instants = pc.if_else(pa.array(unclear), pa.scalar(None, earliest.type), earliest)
    text = pc.strftime(instants.cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%S%z")
    refused = [
        (f"{derive.clock} is not a clock time HHMM (0000 to 2359)", bad_clock),
        (
            f"{derive.date} at {derive.clock} does not exist, or happens twice, in"
            f" {derive.timezone} (the clocks change that day)",
            unclear,
        ),
    ]
    return text, refused
