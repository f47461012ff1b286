"""Typing text fields as declared column types, vectorised, value by value.

Source fields arrive as text (CSV, or Parquet values rendered as text), so one parser serves every
format. Each value either parses or is marked unparseable on its own: a bad value never fails its
neighbours. The fast path is one Arrow cast of the whole column after a shape check (a regex); a
value that has the right shape but is still invalid (``2026-02-30``) is isolated by bisection.
"""

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.arrow_cast import cast_isolating_failures
from platform_assets.lib.ingestion.spec import ColumnSpec
from platform_assets.lib.ingestion.value_formats import (
    describe_format,
    json_values,
    parse_formatted_time,
    plain_decimal,
    plain_decimals,
    with_decimal_point,
)
from platform_assets.lib.jsonb import JSONB_METADATA

_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?"
_SHAPES = {
    "integer": r"^[+-]?\d{1,19}$",
    "double": r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$",
    # Field ranges are in the shape, so only a day a month lacks (02-30) needs the slow path.
    "date": rf"^{_DATE}$",
    "timestamptz": rf"^{_DATE}[T ]{_TIME}(Z|[+-]\d{{2}}(:?\d{{2}})?)$",
    "timestamp": rf"^{_DATE}[T ]{_TIME}$",
}
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
POSTGRES_TYPE_KEY = b"postgres_type"
# Source columns already typed for a chunk: ``{name: (typed, unparseable)}`` (``parse_column``).
ParsedColumns = dict[str, tuple[pa.Array, np.ndarray]]


def arrow_type(column: ColumnSpec) -> pa.DataType:
    """The Arrow type a column is parsed into (and loaded from)."""
    if column.type == "decimal":
        return pa.decimal128(column.precision, column.scale)  # type: ignore[arg-type]
    return {
        "text": pa.string(),
        "integer": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "timestamp": pa.timestamp("us"),
        "json": pa.binary(),  # jsonb's binary COPY form (lib/jsonb)
    }[column.type]


def arrow_field(column: ColumnSpec) -> pa.Field:
    """The column's Arrow field; a decimal carries its exact Postgres type (``numeric(p,s)``)."""
    metadata = None
    if column.type == "decimal":
        metadata = {POSTGRES_TYPE_KEY: f"numeric({column.precision},{column.scale})".encode()}
    if column.type == "json":
        metadata = JSONB_METADATA
    return pa.field(column.name, arrow_type(column), metadata=metadata)


def _shape(column: ColumnSpec) -> str | None:
    if column.type == "integer" and column.accept_integral_decimals:
        return r"^[+-]?\d{1,19}(\.0*)?$"
    if column.type == "decimal":  # by value: leading and trailing zeros are not digits lost
        whole, fraction = column.precision - column.scale, column.scale  # type: ignore[operator]
        digits = rf"0*\d{{1,{whole}}}" if whole else "0*"
        point = rf"(\.\d{{1,{fraction}}}0*)?" if fraction else r"(\.0+)?"
        return rf"^[+-]?{digits}{point}$"
    return _SHAPES.get(column.type)


def true_mask(condition: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as numpy, null counting as False."""
    return np.asarray(pc.fill_null(condition, False).to_numpy(zero_copy_only=False), dtype=bool)


def missing_values(values: pa.Array) -> np.ndarray:
    """Null or empty fields: a CSV cannot tell them apart, so both mean 'no value'."""
    return true_mask(pc.or_kleene(pc.is_null(values), pc.equal(values, "")))


def with_null_markers(rows: pa.Table, markers: Sequence[str]) -> pa.Table:
    """``rows`` (text) with every field that is one of ``markers`` missing (null)."""
    if not markers:
        return rows
    marked = pa.array(list(markers), pa.string())
    columns = [
        pc.if_else(pc.is_in(values, value_set=marked), pa.scalar(None, values.type), values)
        if pa.types.is_string(values.type)
        else values
        for values in rows.columns
    ]
    return pa.Table.from_arrays(columns, schema=rows.schema)


def parse_column(values: pa.Array, column: ColumnSpec) -> tuple[pa.Array, np.ndarray]:
    """``values`` (text) typed as ``column``, and which non-missing values did not parse."""
    missing = missing_values(values)
    present = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), values)
    target = arrow_type(column)
    if column.type == "text":
        return present, np.zeros(len(values), dtype=bool)
    if column.type == "json":
        return json_values(present)
    if column.format is not None:
        return parse_formatted_time(present, column, target)
    present, separator_refused = with_decimal_point(present, column.decimal_separator)
    if column.type == "decimal":
        present = plain_decimals(present)
    if column.type == "boolean":
        lowered = pc.utf8_lower(present)
        typed = pc.if_else(
            pc.is_in(lowered, value_set=pa.array(_TRUE)),
            True,
            pc.if_else(pc.is_in(lowered, value_set=pa.array(_FALSE)), False, None),
        )
        return typed, ~missing & true_mask(pc.is_null(typed))
    well_shaped = true_mask(pc.match_substring_regex(present, _shape(column)))
    candidates = pc.if_else(pa.array(well_shaped), present, pa.scalar(None, pa.string()))
    if column.type == "integer":  # Arrow's integer parser takes "-7" but not "+7", nor "7.0"
        candidates = pc.replace_substring_regex(candidates, r"^\+|\.0*$", "")
    if column.type == "decimal":  # the value's own digits: "0035.920000" is 35.92
        for zeros, kept in (
            (r"^([+-]?)0+(\d)", r"\1\2"),
            (r"(\.\d*?)0+$", r"\1"),
            (r"\.$|^\+", ""),
        ):
            candidates = pc.replace_substring_regex(candidates, zeros, kept)
    typed, cast_failed = cast_isolating_failures(candidates, target)
    return typed, (~missing & ~well_shaped) | cast_failed | separator_refused


def why_unparseable(column: ColumnSpec, text: str) -> str:
    """Why ``text`` is not a value of ``column``, said of this value (a dead letter's message):
    a fraction in an integer, more fraction digits than the scale, too many digits, a comma.
    Values are read locale-free and never rounded, so each of these is refused, not adjusted."""
    name, value, kind = column.name, text.strip(), column.type
    if column.format is not None:
        return f"{name}: {text!r} is not {describe_format(column)}"
    if column.decimal_separator == "," and "." in value:
        return (
            f"{name}: {text!r} holds a '.', but ',' is this column's decimal point (a thousands"
            " separator is never guessed)"
        )
    if column.decimal_separator == ",":
        value = value.replace(",", ".")
    plain = plain_decimal(value) if kind == "decimal" else None
    if plain is not None:
        return f"{why_unparseable(column, plain)} (written {text!r})"
    number = re.fullmatch(r"[+-]?(\d*)(?:\.(\d*))?", value)
    has_digits = number is not None and bool(number.group(1) or number.group(2))
    fraction = number.group(2) if number is not None else None
    zero_fraction_accepted = column.accept_integral_decimals and not (fraction or "").strip("0")
    if kind == "integer" and has_digits and fraction is not None and not zero_fraction_accepted:
        if column.accept_integral_decimals:
            return f"{name}: {text!r} has a fraction that is not zero, and the column is integer"
        message = f"{name}: {text!r} has a fraction, and the column is integer"
        if not fraction.strip("0"):
            message += " (accept_integral_decimals: true in the spec would take it)"
        return message
    if kind == "integer" and has_digits:
        return f"{name}: {text!r} is outside the range of a 64-bit integer"
    if kind == "decimal" and has_digits:
        precision, scale = column.precision, column.scale
        fraction = (number.group(2) or "").rstrip("0")  # type: ignore[union-attr]
        if len(fraction) > scale:  # type: ignore[operator]
            allowed = "no fraction digits" if scale == 0 else f"at most {scale}"
            return (
                f"{name}: {text!r} has {len(fraction)} fraction digits; scale {scale} allows"
                f" {allowed} (values are never rounded)"
            )
        return (
            f"{name}: {text!r} has {len(number.group(1).lstrip('0'))} digits before the point;"  # type: ignore[union-attr]
            f" numeric({precision},{scale}) allows at most {precision - scale}"  # type: ignore[operator]
        )
    if kind in ("integer", "decimal", "double") and "," in value:
        return (
            f"{name}: {text!r} is not a number: numbers are read locale-free, with '.' as the"
            " decimal point and no thousands separator (decimal_separator: ',' in the spec reads"
            " a decimal comma)"
        )
    expected = {
        "integer": "an integer (digits with an optional sign)",
        "decimal": "a decimal number",
        "double": "a number",
        "boolean": f"a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)})",
        "date": "a calendar date as YYYY-MM-DD",
        "timestamptz": "a timestamp with a UTC offset (ISO 8601, e.g. 2026-11-01T12:00:00+00:00)",
        "timestamp": "a timestamp without offset (ISO 8601, e.g. 2026-11-01T12:00:00)",
        "json": "JSON text",
    }[kind]
    return f"{name}: {text!r} is not {expected}"
