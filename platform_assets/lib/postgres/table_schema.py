"""Postgres column types for Arrow data: creating a table from a frame, and checking it still fits.

A new nullable column in the frame is added to the table (additive evolution). A changed type, or a
column the frame no longer has, is refused with an error naming the column: that needs a migration.
"""

from dataclasses import dataclass

import pyarrow as pa


class SchemaMismatchError(Exception):
    """The frame no longer fits the existing table in a way only a migration can resolve."""


@dataclass(frozen=True)
class Column:
    """A table column as Postgres reports it (``format_type``)."""

    name: str
    pg_type: str


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


def plan_evolution(
    existing: list[Column], frame_schema: pa.Schema, table_name: str
) -> list[Column]:
    """The columns to add so the table can take ``frame_schema``; raise if only a migration can."""
    by_name = {column.name: column for column in existing}
    missing = [column.name for column in existing if column.name not in frame_schema.names]
    if missing:
        raise SchemaMismatchError(
            f"{table_name}: the frame has no column(s) {missing} that the table has; dropping a "
            "column needs a migration."
        )
    additions = []
    for field in frame_schema:
        wanted = postgres_type(field)
        current = by_name.get(field.name)
        if current is None:
            additions.append(Column(field.name, wanted))
        elif not pa.types.is_null(field.type) and _base_type(current.pg_type) != _base_type(wanted):
            raise SchemaMismatchError(
                f"{table_name}: column {field.name!r} is {current.pg_type} in the table but "
                f"{wanted} in the frame; changing a column's type needs a migration."
            )
    return additions
