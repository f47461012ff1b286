"""The SQL the IO manager runs, as text for ADBC (``$n`` parameters).

Names are quoted by psycopg's ``sql.Identifier``; values are always parameters, never formatted in.
"""

from datetime import date, datetime, time

from psycopg import sql

from platform_assets.lib.postgres.table_schema import Column
from platform_assets.lib.postgres.table_slice import TableSlice, TimeRange

TABLE_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped"
    " ORDER BY a.attnum"
)
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def _render(statement: sql.Composable) -> str:
    return statement.as_string()


def table_identifier(schema: str, table: str) -> str:
    """The quoted ``"schema"."table"``, also the argument ``to_regclass`` expects."""
    return _render(sql.Identifier(schema, table))


def create_schema(schema: str) -> str:
    """CREATE SCHEMA IF NOT EXISTS for ``schema``."""
    return _render(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def create_table(schema: str, table: str, columns: list[Column], primary_key: list[str]) -> str:
    """CREATE TABLE with the given columns and optional primary key."""
    parts = [
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.pg_type))
        for column in columns
    ]
    if primary_key:
        parts.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, primary_key)))
        )
    return _render(
        sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(schema, table), sql.SQL(", ").join(parts)
        )
    )


def create_index(schema: str, table: str, column: str) -> str:
    """An index on ``column`` (the partition column), named so it stays under 63 bytes."""
    name = f"{table[:40]}_{column[:16]}_idx"
    return _render(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(name), sql.Identifier(schema, table), sql.Identifier(column)
        )
    )


def add_column(schema: str, table: str, column: Column) -> str:
    """ALTER TABLE … ADD COLUMN (nullable, no default: a catalog-only change)."""
    return _render(
        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
            sql.Identifier(schema, table), sql.Identifier(column.name), sql.SQL(column.pg_type)
        )
    )


def partition_bounds(
    time_range: TimeRange, pg_type: str
) -> tuple[date | datetime, date | datetime]:
    """The window's bounds typed like the partition column, so Postgres compares without casting.

    A ``date`` column takes the window's calendar dates in the partitions' time zone; a
    ``timestamptz`` column takes the aware instants; a naive ``timestamp`` the wall-clock times.
    """
    if pg_type == "date":
        if time_range.start.time() != time.min or time_range.end.time() != time.min:
            raise ValueError(
                f"a date partition column needs day-aligned partitions, got {time_range}"
            )
        return time_range.start.date(), time_range.end.date()
    if pg_type == "timestamp with time zone":
        return time_range.start, time_range.end
    if pg_type == "timestamp without time zone":
        return time_range.start.replace(tzinfo=None), time_range.end.replace(tzinfo=None)
    raise ValueError(f"partition column of type {pg_type} cannot hold a time window")


def _slice_predicate(table_slice: TableSlice) -> sql.Composable:
    """The rows the slice owns; a time window binds its bounds as $1 and $2."""
    if table_slice.partition_column is None:
        return sql.SQL("TRUE")
    return sql.SQL("{col} >= $1 AND {col} < $2").format(
        col=sql.Identifier(table_slice.partition_column)
    )


def delete_slice(table_slice: TableSlice) -> str:
    """DELETE the slice's rows and return how many went (parameters: the window's bounds)."""
    return _render(
        sql.SQL(
            "WITH deleted AS (DELETE FROM {} WHERE {} RETURNING 1) SELECT count(*) FROM deleted"
        ).format(
            sql.Identifier(table_slice.schema, table_slice.table), _slice_predicate(table_slice)
        )
    )


def select_slice(table_slice: TableSlice) -> str:
    """SELECT the slice's rows, projected to ``table_slice.columns`` when given."""
    columns = (
        sql.SQL(", ").join(map(sql.Identifier, table_slice.columns))
        if table_slice.columns
        else sql.SQL("*")
    )
    return _render(
        sql.SQL("SELECT {} FROM {} WHERE {}").format(
            columns,
            sql.Identifier(table_slice.schema, table_slice.table),
            _slice_predicate(table_slice),
        )
    )
