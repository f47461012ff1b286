"""Write and read slices of a table through ADBC.

A write replaces the slice in one transaction: lock, DELETE its rows, COPY the new ones, commit.

Readers see the old rows or the new ones, never half a partition; a failure anywhere rolls the whole
write back and leaves the previous rows in place. A second writer of the same slice waits on the
transaction-scoped advisory lock instead of interleaving.
"""

from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.postgres import statements
from platform_assets.lib.postgres.table_schema import Column, plan_evolution, postgres_type
from platform_assets.lib.postgres.table_slice import TableSlice


class PartitionWriteError(Exception):
    """Writing a slice failed; the transaction was rolled back, so its previous rows are intact."""


class RowsOutsidePartitionError(ValueError):
    """The frame holds rows whose partition column falls outside the partition being written."""


@dataclass(frozen=True)
class WriteResult:
    """What one replace did to the table."""

    rows_deleted: int
    rows_inserted: int
    columns: tuple[Column, ...]


def table_columns(cursor: adbc.Cursor, schema: str, table: str) -> list[Column]:
    """The table's columns in order, or an empty list if the table does not exist."""
    cursor.execute(
        statements.TABLE_COLUMNS, parameters=(statements.table_identifier(schema, table),)
    )
    return [Column(name, pg_type) for name, pg_type in cursor.fetchall()]


def prepare_table(
    conn: adbc.Connection, table_slice: TableSlice, frame_schema: pa.Schema, primary_key: list[str]
) -> list[Column]:
    """Create the schema and table, or add the frame's new columns; commit; return the columns.

    Runs in its own short transaction under an advisory lock on the table, so concurrent first
    writers of different partitions do not race each other's CREATE TABLE.
    """
    schema, table = table_slice.schema, table_slice.table
    cursor = conn.cursor()
    try:
        cursor.execute(
            statements.ADVISORY_XACT_LOCK, parameters=(f"ddl|{table_slice.qualified_name}",)
        )
        cursor.execute(statements.create_schema(schema))
        existing = table_columns(cursor, schema, table)
        if not existing:
            existing = [Column(field.name, postgres_type(field.type)) for field in frame_schema]
            cursor.execute(statements.create_table(schema, table, existing, primary_key))
            if table_slice.partition_column is not None:
                cursor.execute(statements.create_index(schema, table, table_slice.partition_column))
        else:
            for column in plan_evolution(existing, frame_schema, table_slice.qualified_name):
                cursor.execute(statements.add_column(schema, table, column))
                existing.append(column)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()
    return existing


def count_rows_outside(data: pa.Table, column: str, low: object, high: object) -> int:
    """Rows whose ``column`` is null or outside ``[low, high)``."""
    values = data.column(column)
    if pa.types.is_null(values.type):  # an empty frame's column, or one holding only nulls
        return data.num_rows
    low_scalar, high_scalar = pa.scalar(low, type=values.type), pa.scalar(high, type=values.type)
    inside = pc.and_(pc.greater_equal(values, low_scalar), pc.less(values, high_scalar))
    return data.num_rows - pc.sum(pc.fill_null(inside, False).cast(pa.int64())).as_py()


def slice_bounds(table_slice: TableSlice, columns: list[Column]) -> tuple[object, ...]:
    """The ``$1, $2`` bounds of the slice's time window, typed like its partition column."""
    if table_slice.time_range is None or table_slice.partition_column is None:
        return ()
    pg_types = {column.name: column.pg_type for column in columns}
    if table_slice.partition_column not in pg_types:
        raise ValueError(
            f"{table_slice.qualified_name} has no partition column {table_slice.partition_column!r}"
        )
    return statements.partition_bounds(
        table_slice.time_range, pg_types[table_slice.partition_column]
    )


def replace_slice(
    conn: adbc.Connection, table_slice: TableSlice, data: pa.Table, columns: list[Column]
) -> WriteResult:
    """Delete the slice's rows and COPY ``data`` in, in one transaction (see module docstring)."""
    bounds = slice_bounds(table_slice, columns)
    if bounds:
        outside = count_rows_outside(data, table_slice.partition_column, *bounds)
        if outside:
            raise RowsOutsidePartitionError(
                f"{table_slice.qualified_name}: {outside} of {data.num_rows} rows have "
                f"{table_slice.partition_column!r} outside partition {table_slice.partition_label} "
                f"[{bounds[0]}, {bounds[1]}) or null; nothing was written."
            )
    cursor = conn.cursor()
    try:
        cursor.execute(statements.ADVISORY_XACT_LOCK, parameters=(table_slice.lock_key,))
        cursor.execute(statements.delete_slice(table_slice), parameters=bounds or None)
        (rows_deleted,) = cursor.fetchone()
        if data.num_rows:
            cursor.adbc_ingest(
                table_slice.table, data, mode="append", db_schema_name=table_slice.schema
            )
        conn.commit()
    except adbc.Error as error:
        conn.rollback()
        raise PartitionWriteError(
            f"writing partition {table_slice.partition_label or '(whole table)'} of "
            f"{table_slice.qualified_name} failed and was rolled back; its previous rows are "
            f"unchanged. Cause: {error}"
        ) from error
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()
    return WriteResult(
        rows_deleted=rows_deleted, rows_inserted=data.num_rows, columns=tuple(columns)
    )


def read_slice(conn: adbc.Connection, table_slice: TableSlice) -> pa.Table:
    """The slice's rows as Arrow, read through ADBC's binary COPY."""
    cursor = conn.cursor()
    try:
        columns = table_columns(cursor, table_slice.schema, table_slice.table)
        if not columns:
            raise LookupError(
                f"table {table_slice.qualified_name} does not exist: materialise its asset first"
            )
        bounds = slice_bounds(table_slice, columns)
        cursor.execute(statements.select_slice(table_slice), parameters=bounds or None)
        return cursor.fetch_arrow_table()
    finally:
        cursor.close()
        conn.rollback()
