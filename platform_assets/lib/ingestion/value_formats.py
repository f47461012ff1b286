"""The ways real files write numbers and times, read exactly: what ``parsing`` does before its
own shape check and cast when a column declares how its values are written.

- A decimal in exponent notation (``1e3``, ``1.5E-2``, as R and spreadsheets export large and
  small numbers) is rewritten as the plain decimal it is, digit for digit (Python's ``Decimal``,
  only for the values that have an exponent), then checked against the column's precision and
  scale like any other: ``1.234e1`` into scale 2 is refused, never rounded.
- A column with ``decimal_separator: ","`` reads ``3,5`` as 3.5; a value that also holds a ``.``
  is refused (a thousands separator or a mistake: never guessed).
- A ``json`` column holds any JSON value (an object a JSON Lines record nests, an API's list),
  validated and stored as ``jsonb``, numbers exactly as written.
- A date or timestamp column with ``format`` reads its values with that ``strptime`` pattern
  (``%d/%m/%Y``, ``%Y%m%d``, ``%d.%m.%Y %H:%M``), and a ``timestamptz`` column may declare
  ``epoch_s`` or ``epoch_ms``: whole seconds or milliseconds since 1970-01-01 UTC.
"""

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import simplejson

from platform_assets.lib.ingestion.spec import EPOCH_FORMATS, ColumnSpec
from platform_assets.lib.jsonb import JSONB_VERSION

_EXPONENT = r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d{1,4}$"
# Whole seconds or milliseconds; the digits bound them to about the year 5000.
_EPOCH = {"epoch_s": (r"^[+-]?\d{1,11}$", 1_000_000), "epoch_ms": (r"^[+-]?\d{1,14}$", 1_000)}


def _as_mask(condition: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(condition, False).to_numpy(zero_copy_only=False), dtype=bool)


def _plain(text: str) -> str | None:
    try:
        return format(Decimal(text), "f")
    except InvalidOperation:
        return None


def plain_decimals(values: pa.Array) -> pa.Array:
    """``values`` with every number in exponent notation written out in plain digits."""
    exponent = _as_mask(pc.match_substring_regex(values, _EXPONENT))
    if not exponent.any():
        return values
    rewritten = np.array(values.to_pylist(), dtype=object)
    rewritten[exponent] = [_plain(text) for text in rewritten[exponent]]
    return pa.array(rewritten, pa.string())


def with_decimal_point(values: pa.Array, separator: str) -> tuple[pa.Array, np.ndarray]:
    """``values`` with ``separator`` read as the decimal point, and which values are refused
    for holding a ``.`` besides (for ``,``)."""
    if separator == ".":
        return values, np.zeros(len(values), dtype=bool)
    refused = _as_mask(pc.match_substring(values, "."))
    comma_to_point = pc.replace_substring(values, ",", ".")
    return pc.if_else(pa.array(refused), pa.scalar(None, pa.string()), comma_to_point), refused


def parse_formatted_time(
    values: pa.Array, column: ColumnSpec, target: pa.DataType
) -> tuple[pa.Array, np.ndarray]:
    """``values`` read as the column's ``format`` says, and which present values did not
    parse (null in the result)."""
    assert column.format is not None
    present = _as_mask(pc.is_valid(values))
    if column.format in EPOCH_FORMATS:
        shape, to_microseconds = _EPOCH[column.format]
        whole = _as_mask(pc.match_substring_regex(values, shape))
        numbers = pc.cast(pc.if_else(pa.array(whole), values, None), pa.int64())
        micros = pc.multiply(numbers, to_microseconds)
        return pc.cast(micros, pa.timestamp("us")).cast(target), present & ~whole
    parsed = pc.strptime(values, format=column.format, unit="us", error_is_null=True)
    # Arrow's strptime is lenient (31/02 becomes 3 March): a value is taken as Arrow read it only
    # if it writes back the same; any other is read by Python's strict strptime, or refused.
    written_back = pc.strftime(parsed, format=column.format)
    unsure = present & ~_as_mask(pc.equal(written_back, values))
    if unsure.any():
        exact = np.array(parsed.to_pylist(), dtype=object)
        exact[unsure] = [_strict(text, column.format) for text in values.filter(unsure).to_pylist()]
        parsed = pa.array(exact.tolist(), parsed.type)
    return parsed.cast(target), present & ~_as_mask(pc.is_valid(parsed))


def _strict(text: str, pattern: str) -> datetime | None:
    """``text`` read with ``pattern`` by Python (a day the month lacks is refused), as UTC when
    it has an offset; None if it does not match, or only by guessing where a field ends
    (``2026122`` as ``%Y%m%d``): written back, it must hold the same fields, zero-padding aside."""
    try:
        value = datetime.strptime(text, pattern)
    except ValueError:
        return None
    if _fields(value.strftime(pattern)) != _fields(text):
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _fields(text: str) -> tuple[list[int], str]:
    """A date's numbers and what separates them (colons aside: ``+01:00`` is ``+0100``)."""
    text = text.replace(":", "").lower()
    return [int(number) for number in re.findall(r"\d+", text)], re.sub(r"\d+", "#", text)


def describe_format(column: ColumnSpec) -> str:
    """What a value of a formatted column looks like (for a dead letter's message)."""
    if column.format == "epoch_s":
        return "a whole number of seconds since 1970-01-01 UTC"
    if column.format == "epoch_ms":
        return "a whole number of milliseconds since 1970-01-01 UTC"
    kind = "a date" if column.type == "date" else "a timestamp"
    return f"{kind} written as {column.format}"


def plain_decimal(text: str) -> str | None:
    """``text`` written out in plain digits if it is a number in exponent notation."""
    return _plain(text.strip()) if re.fullmatch(_EXPONENT, text.strip()) else None


def json_values(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """JSON texts as jsonb's binary COPY form (keys sorted, numbers exact), and which present
    values are not JSON."""
    stored: list[bytes | None] = []
    failed = np.zeros(len(values), dtype=bool)
    for index, text in enumerate(values.to_pylist()):
        if text is None:
            stored.append(None)
            continue
        try:
            value = simplejson.loads(text, use_decimal=True)
        except simplejson.JSONDecodeError:
            stored.append(None)
            failed[index] = True
            continue
        written = simplejson.dumps(value, sort_keys=True, ensure_ascii=False, use_decimal=True)
        stored.append(JSONB_VERSION + written.encode())
    return pa.array(stored, pa.binary()), failed
