"""Postgres column types for Arrow data: creating a table from a frame, and checking it still fits.

A new nullable column in the frame is added to the table (additive evolution). Where the writer
declares which columns are required, a table's NOT NULL on a column no longer required is dropped
(catalog-only, no value changes); a required column the table still allows nulls in is left to a
planned migration (it must prove there are none). A column whose
declared type the table holds only in a narrower form is widened when that is safe and changes no
stored value: numeric precision up at the same scale, smallint or integer to bigint, varchar(n)
to a longer varchar or text. Anything else that the table could not hold exactly (a smaller
scale, which would round; another type; a column the frame no longer has) is refused with an
error naming the column and the migration to write. A value is never altered on its way in.
"""

import re
from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from platform_assets.lib.tables import statements


class SchemaMismatchError(Exception):
    """The frame no longer fits the existing table in a way only a migration can resolve."""


@dataclass(frozen=True)
class Column:
    """A table column as Postgres reports it (``format_type``), and whether it is NOT NULL."""

    name: str
    pg_type: str
    not_null: bool = False


@dataclass(frozen=True)
class Evolution:
    """What a write changes in an existing table first: columns to add, columns to widen (with
    their new type)."""

    additions: list[Column]
    widenings: list[Column]
    relaxed: list[str] = dataclass_field(
        default_factory=list
    )  # NOT NULL columns no longer required


_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")
_VARCHAR = re.compile(r"^character varying\((\d+)\)$")
_INTEGERS = ("smallint", "integer", "bigint")


def postgres_type(field: pa.Field) -> str:
    """The Postgres type a column of this Arrow field is stored as."""
    declared = (field.metadata or {}).get(b"postgres_type")
    if declared:  # jsonb, or an exact type such as numeric(12,2) from a dataset spec
        return declared.decode()
    arrow_type = field.type
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type):
        return "smallint"
    if (
        pa.types.is_int32(arrow_type)
        or pa.types.is_uint8(arrow_type)
        or pa.types.is_uint16(arrow_type)
    ):
        return "integer"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_float32(arrow_type):
        return "real"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return "numeric"  # unconstrained: pandas infers a different precision for every frame
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_null(arrow_type)
    ):
        return "text"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp without time zone"
    if (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
    ):
        return "bytea"
    raise TypeError(f"no Postgres type for Arrow type {arrow_type}")


def _base_type(pg_type: str) -> str:
    """``numeric(12,2)`` and ``numeric`` are the same family for compatibility checks."""
    return pg_type.split("(", 1)[0]


def _numeric(pg_type: str) -> tuple[int, int] | None:
    match = _NUMERIC.match(pg_type)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


# The suffix of the column a type change by add / migrate / swap leaves behind (the old values).
RETIRED_SUFFIX = "__old"


@dataclass(frozen=True)
class Mismatch:
    """A column only a migration can change: the table holds it as ``stored``, and the frame
    declares it as ``declared``, or no longer has it (None). A ``retired`` column is the
    ``<column>__old`` a type change left behind: writes leave it empty until a migration drops
    it, so it does not stop them."""

    column: str
    stored: str
    declared: str | None
    retired: bool = False


def _fit(name: str, current: str, field: pa.Field) -> Column | Mismatch | None:
    """None if the table's column holds every value of ``field`` exactly; the widened column if
    a safe widening makes it so; otherwise the mismatch only a migration resolves."""
    wanted = postgres_type(field)
    if pa.types.is_null(field.type) or current == wanted:
        return None
    held, declared = _numeric(current), _numeric(wanted)
    if held is not None and pa.types.is_decimal(field.type):
        precision, scale = declared or (field.type.precision, field.type.scale)
        if scale <= held[1] and (declared is None or precision - scale <= held[0] - held[1]):
            return None  # every value fits without rounding (an overflow is an error, never lost)
        if declared is not None and scale == held[1]:
            return Column(name, wanted)  # more digits at the same scale: catalog-only in Postgres
    elif current == "numeric" and _base_type(wanted) == "numeric":
        return None  # unconstrained: holds any decimal exactly
    elif current in _INTEGERS and wanted in _INTEGERS:
        if _INTEGERS.index(current) >= _INTEGERS.index(wanted):
            return None
        return Column(name, wanted)
    elif _VARCHAR.match(current) and (wanted == "text" or _VARCHAR.match(wanted)):
        return Column(name, wanted)  # text or a longer varchar: no rewrite, no value changed
    elif _base_type(current) == _base_type(wanted) and held is None and declared is None:
        return None
    return Mismatch(name, current, wanted)


def compare_columns(
    existing: list[Column], frame_schema: pa.Schema
) -> tuple[Evolution, list[Mismatch]]:
    """What a write may change in place (columns to add and to widen, without changing a value),
    and what only a migration can (columns of another type, columns no longer in the frame)."""
    by_name = {column.name: column for column in existing}
    retired = {f"{name}{RETIRED_SUFFIX}"[:63] for name in frame_schema.names}
    mismatches = [
        Mismatch(column.name, column.pg_type, None, column.name in retired)
        for column in existing
        if column.name not in frame_schema.names
    ]
    additions, widenings = [], []
    for field in frame_schema:
        current = by_name.get(field.name)
        if current is None:
            additions.append(Column(field.name, postgres_type(field)))
            continue
        fitted = _fit(field.name, current.pg_type, field)
        if isinstance(fitted, Mismatch):
            mismatches.append(fitted)
        elif fitted is not None:
            widenings.append(fitted)
    return Evolution(additions, widenings), mismatches


def plan_evolution(
    existing: list[Column],
    frame_schema: pa.Schema,
    table_name: str,
    required: Collection[str] | None = None,
) -> Evolution:
    """The columns to add and to widen so the table can take ``frame_schema`` without changing a
    value, and (when the writer declares its ``required`` columns) the NOT NULL columns it no
    longer requires; raise, naming the change and the migration it needs, if only a migration
    can."""
    evolution, mismatches = compare_columns(existing, frame_schema)
    if required is not None:
        evolution.relaxed.extend(
            column.name
            for column in existing
            if column.not_null and column.name in frame_schema.names and column.name not in required
        )
    mismatches = [m for m in mismatches if not m.retired]
    missing = [m.column for m in mismatches if m.declared is None]
    if missing:
        raise SchemaMismatchError(
            f"{table_name}: the frame has no column(s) {missing} that the table has; dropping a "
            "column needs a migration (the migrate job's dry run plans it for a dataset)."
        )
    if mismatches:
        name, current, wanted = mismatches[0].column, mismatches[0].stored, mismatches[0].declared
        raise SchemaMismatchError(
            f"{table_name}: column {name!r} is {current} in the table but {wanted} is declared;"
            " the table cannot hold every declared value exactly (a smaller scale would round)"
            f" and no safe widening applies, so changing it needs a migration that changes the"
            f" column's type to {wanted} (for a dataset, the migrate job's dry run plans it), or"
            " declare the table's type."
        )
    return evolution


def table_columns(cursor: adbc.Cursor, schema: str, table: str) -> list[Column]:
    """The table's columns in order, or an empty list if the table does not exist."""
    cursor.execute(
        statements.TABLE_COLUMNS, parameters=(statements.table_identifier(schema, table),)
    )
    return [Column(name, pg_type, not_null) for name, pg_type, not_null in cursor.fetchall()]
