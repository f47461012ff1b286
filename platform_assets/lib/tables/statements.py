"""The SQL the IO manager runs on rows (predicates, deletes, reads, merges), as text for ADBC
(``$n`` parameters); table DDL is in ``ddl``.

Names are quoted by psycopg's ``sql.Identifier``; values are always parameters, never formatted in.
Partition bounds and keys are converted to the partition column's own type before binding, so
Postgres compares like with like (no session time zone, no text casts).
"""

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from adbc_driver_postgresql.dbapi import Cursor

from platform_assets.lib.tables.table_slice import (
    WHOLE_TABLE,
    PartitionSlice,
    TableSlice,
    TimeRange,
)

TABLE_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped"
    " ORDER BY a.attnum"
)


ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def advisory_xact_locks(keys: list[str]) -> tuple[str, list[object]]:
    """``ADVISORY_XACT_LOCK`` on each of ``keys`` in one statement, taken in sorted order (the
    sorted subquery is evaluated before the locks), so writers never deadlock on each other."""
    params = Params()
    statement = sql.SQL(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
        " FROM (SELECT k FROM (VALUES {}) AS v(k) ORDER BY k) AS ordered"
    ).format(sql.SQL(", ").join(sql.SQL("({})").format(params.add(key)) for key in keys))
    return render(statement), params.values


SET_LOCAL = "SELECT set_config($1, $2, true)"


_INTEGER_TYPES = ("smallint", "integer", "bigint")


class Params:
    """Collects parameter values and hands out their ``$n`` placeholders in order."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def add(self, value: object, pg_type: str | None = None) -> sql.Composable:
        """Append ``value`` and return its placeholder (a bound value carries its own type)."""
        self.values.append(value)
        return sql.SQL(f"${len(self.values)}")

    def add_all(self, values: Iterable[object]) -> sql.Composable:
        """Append each of ``values``; their placeholders joined by commas, for ``IN (...)``."""
        return sql.SQL(", ").join(self.add(value) for value in values)


class SettingParams(Params):
    """Values passed as transaction-local settings, for a query ADBC should run as a binary COPY.

    ADBC streams a query's rows through ``COPY … TO STDOUT`` only when it has no bind parameters
    (with them, it fetches row by row: ~40 % slower for a 100k-row read). So each value is first
    bound, as text, to ``set_config`` (``setup``), and the query reads it back with
    ``current_setting(…)`` cast to the column's type. Values are still never formatted into SQL.
    """

    def add(self, value: object, pg_type: str | None = None) -> sql.Composable:
        """Append ``value`` and return the expression reading it back as ``pg_type``."""
        if pg_type is None:
            raise ValueError("a setting parameter needs the type to read its value back as")
        self.values.append(value.isoformat() if isinstance(value, date) else str(value))
        return sql.SQL("current_setting({})::{}").format(
            _setting_name(len(self.values)), sql.SQL(pg_type)
        )

    def setup(self) -> tuple[str, list[object]]:
        """The statement that sets every value for the rest of the transaction, and its params
        (run it only when there are values)."""
        bound = Params()
        calls = [
            sql.SQL("set_config({}, {}, true)").format(_setting_name(n), bound.add(value))
            for n, value in enumerate(self.values, start=1)
        ]
        return render(sql.SQL("SELECT {}").format(sql.SQL(", ").join(calls))), bound.values


ROWS_PER_STATEMENT = 4_000  # rows of a multi-row VALUES: at 8 columns, half Postgres's 65,535


def execute_values(
    cursor: "Cursor", head: sql.Composable, rows: Sequence[Sequence[object]], tail: sql.Composable
) -> None:
    """``head VALUES (row), (row)… tail`` for every row, in as few statements as the parameter
    limit allows (one for any range of days): a write's figures cost no round trip per row."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        params = Params()
        values = sql.SQL(", ").join(
            sql.SQL("({})").format(params.add_all(row))
            for row in rows[start : start + ROWS_PER_STATEMENT]
        )
        statement = sql.SQL("{} VALUES {} {}").format(head, values, tail)
        cursor.execute(render(statement), parameters=params.values)


def _setting_name(position: int) -> sql.Composable:
    """The transaction-local setting holding the ``position``-th ``SettingParams`` value."""
    return sql.Literal(f"platform.param_{position}")


def render(statement: sql.Composable) -> str:
    return statement.as_string()


def names(columns: list[str] | tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def table_identifier(schema: str, table: str) -> str:
    """The quoted ``"schema"."table"``, also the argument ``to_regclass`` expects."""
    return render(sql.Identifier(schema, table))


def window_bounds(window: TimeRange, pg_type: str) -> tuple[date | datetime, date | datetime]:
    """A window's bounds typed like the partition column.

    A ``date`` column takes the window's calendar dates in the partitions' time zone; a
    ``timestamptz`` column the aware instants; a naive ``timestamp`` the wall-clock times.
    """
    if pg_type == "date":
        if window.start.time() != time.min or window.end.time() != time.min:
            raise ValueError(f"a date partition column needs day-aligned partitions, got {window}")
        return window.start.date(), window.end.date()
    if pg_type == "timestamp with time zone":
        return window.start, window.end
    if pg_type == "timestamp without time zone":
        return window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)
    raise ValueError(f"a partition column of type {pg_type} cannot hold a time window")


def key_value(text: str, pg_type: str) -> object:
    """A partition key's text converted to the partition column's type."""
    if pg_type == "date":
        return date.fromisoformat(text)
    if pg_type in _INTEGER_TYPES:
        return int(text)
    if pg_type.startswith("numeric"):
        return Decimal(text)
    if pg_type == "text":
        return text
    raise ValueError(f"a partition column of type {pg_type} cannot hold partition keys")


def partition_predicate(
    table_slice: TableSlice, partition: PartitionSlice, pg_types: dict[str, str], params: Params
) -> sql.Composable:
    """The rows ``partition`` owns, exactly: every row, in an unpartitioned table."""
    if not table_slice.partition_columns:
        return sql.SQL("TRUE")
    if partition.window is not None:
        column = table_slice.partition_columns[0]
        low, high = window_bounds(partition.window, pg_types[column])
        return sql.SQL("({col} >= {low} AND {col} < {high})").format(
            col=sql.Identifier(column),
            low=params.add(low, pg_types[column]),
            high=params.add(high, pg_types[column]),
        )
    terms = [
        sql.SQL("{} = {}").format(
            sql.Identifier(column),
            params.add(key_value(value, pg_types[column]), pg_types[column]),
        )
        for column, value in zip(table_slice.partition_columns, partition.values or (), strict=True)
    ]
    return sql.SQL("({})").format(sql.SQL(" AND ").join(terms))


def _merged(partitions: tuple[PartitionSlice, ...]) -> list[PartitionSlice]:
    """Adjacent time windows merged, so a range reads as one index range scan."""
    if not partitions or partitions[0].window is None:
        return list(partitions)
    ordered = sorted(partitions, key=lambda p: p.window.start)  # type: ignore[union-attr]
    merged = [ordered[0]]
    for partition in ordered[1:]:
        last = merged[-1].window
        if last is not None and partition.window is not None and partition.window.start == last.end:
            merged[-1] = PartitionSlice(
                key=merged[-1].key, window=TimeRange(last.start, partition.window.end)
            )
        else:
            merged.append(partition)
    return merged


def slice_predicate(
    table_slice: TableSlice, pg_types: dict[str, str], params: Params
) -> sql.Composable:
    """The rows the whole slice owns: the union of its partitions' rows, never widened."""
    if not table_slice.partitions:
        return sql.SQL("TRUE")
    return sql.SQL(" OR ").join(
        partition_predicate(table_slice, partition, pg_types, params)
        for partition in _merged(table_slice.partitions)
    )


class PartitionOfRow:
    """Which of a slice's partitions a row belongs to, computed in SQL for a ``GROUP BY``.

    ``expressions`` select the row's partition: for time windows its ``width_bucket`` over the
    partitions' sorted starts (bucket ``i`` is the ``i``-th partition by start; rows between
    windows must be excluded by ``slice_predicate``), for key partitions its partition columns,
    for an unpartitioned table a constant. ``key_of`` maps the selected values back to the key.
    """

    def __init__(self, table_slice: TableSlice, pg_types: dict[str, str], params: Params) -> None:
        self._keys: dict[tuple[object, ...], str] = {}
        self._types: list[str] = []
        if not table_slice.partitions:
            self.expressions: list[sql.Composable] = [sql.SQL("1")]
            self._keys[(1,)] = WHOLE_TABLE
        elif table_slice.partitions[0].window is not None:
            column = table_slice.partition_columns[0]
            ordered = sorted(table_slice.partitions, key=lambda p: p.window.start)  # type: ignore[union-attr]
            starts = [window_bounds(p.window, pg_types[column])[0] for p in ordered]  # type: ignore[arg-type]
            self.expressions = [
                sql.SQL("width_bucket({}, ARRAY[{}])").format(
                    sql.Identifier(column), params.add_all(starts)
                )
            ]
            self._keys = {(n,): p.key for n, p in enumerate(ordered, start=1)}
        else:
            self.expressions = [sql.Identifier(c) for c in table_slice.partition_columns]
            columns = table_slice.partition_columns
            self._types = [pg_types[column] for column in columns]
            for partition in table_slice.partitions:
                typed = tuple(
                    key_value(value, pg_types[column])
                    for column, value in zip(columns, partition.values or (), strict=True)
                )
                self._keys[typed] = partition.key

    @property
    def width(self) -> int:
        """How many values ``expressions`` select."""
        return len(self.expressions)

    def select(self) -> sql.Composable:
        """The expressions for a ``SELECT`` list, named ``_partition_0``, ``_partition_1``…"""
        return sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(expression, sql.Identifier(f"_partition_{n}"))
            for n, expression in enumerate(self.expressions)
        )

    def grouping(self) -> sql.Composable:
        """The names ``select`` gave the expressions, for a ``GROUP BY``."""
        return sql.SQL(", ").join(sql.Identifier(f"_partition_{n}") for n in range(self.width))

    def key_of(self, values: tuple[object, ...]) -> str:
        """The partition key of a row whose ``expressions`` gave ``values`` (key partitions'
        values compared as the column's type, whatever Python type the driver returned)."""
        if self._types:
            values = tuple(key_value(str(v), t) for v, t in zip(values, self._types, strict=True))
        return self._keys[tuple(values)]


def delete_slice(
    table_slice: TableSlice, pg_types: dict[str, str]
) -> tuple[str, list[object], PartitionOfRow]:
    """One DELETE of every row the slice owns, returning how many went from each partition: rows
    ``(<partition of row>..., rows)``, whose first values ``PartitionOfRow.key_of`` names."""
    params = Params()
    target = sql.Identifier(table_slice.schema, table_slice.table)
    of_row = PartitionOfRow(table_slice, pg_types, params)
    predicate = slice_predicate(table_slice, pg_types, params)
    returned, grouping = of_row.select(), of_row.grouping()
    statement = sql.SQL(
        "WITH deleted AS (DELETE FROM {} WHERE {} RETURNING {})"
        " SELECT {}, count(*) AS rows FROM deleted GROUP BY {}"
    ).format(target, predicate, returned, grouping, grouping)
    return render(statement), params.values, of_row


def partition_hashes(
    table_slice: TableSlice, pg_types: dict[str, str], hash_column: str
) -> tuple[str, list[object], PartitionOfRow]:
    """Each of the slice's partitions' (or the whole table's) row hashes concatenated into one
    bytea, in one statement: rows ``(<partition of row>..., hashes)``."""
    params = Params()
    of_row = PartitionOfRow(table_slice, pg_types, params)
    statement = sql.SQL("SELECT {}, string_agg({}, ''::bytea) FROM {} WHERE {} GROUP BY {}").format(
        of_row.select(),
        sql.Identifier(hash_column),
        sql.Identifier(table_slice.schema, table_slice.table),
        slice_predicate(table_slice, pg_types, params),
        of_row.grouping(),
    )
    return render(statement), params.values, of_row


def select_slice(
    table_slice: TableSlice, columns: list[str], pg_types: dict[str, str]
) -> tuple[tuple[str, list[object]], str]:
    """SELECT ``columns`` of the slice's rows: the ``SettingParams`` setup, then the query."""
    params = SettingParams()
    statement = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        names(columns),
        sql.Identifier(table_slice.schema, table_slice.table),
        slice_predicate(table_slice, pg_types, params),
    )
    return params.setup(), render(statement)


def count_rows(schema: str, table: str) -> str:
    """How many rows a table holds."""
    return render(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))


PREVIOUS_HASH = "previous_row_hash"


MOVED = "moved_partition"


def upsert_from_staging(
    schema: str,
    table: str,
    staging: str,
    columns: list[str],
    primary_key: list[str],
    hash_column: str,
    partition_columns: list[str],
    native_partitions: bool = False,
) -> str:
    """INSERT the staged rows; on a key conflict UPDATE only rows whose hash changed.

    Returns one row per row written: ``inserted`` (``xmax = 0`` marks a fresh row), the partition
    columns, the new hash and, for an updated row, the hash it replaced (``previous_row_hash``)
    and whether its partition columns changed (``moved_partition``). The subqueries read the row
    as it was: every part of one statement sees the snapshot taken before the statement's writes.

    A native partitioned table has no ``xmax`` to return, so there a row is fresh when the
    subquery finds no row before it; and its key includes the partition column, so no row moves.
    """
    target = sql.Identifier(schema, table)
    key_match = sql.SQL(" AND ").join(
        sql.SQL("previous.{c} = target.{c}").format(c=sql.Identifier(c)) for c in primary_key
    )

    def previous(expression: sql.Composable) -> sql.Composable:
        lookup = sql.SQL("(SELECT {} FROM {} AS previous WHERE {})").format(
            expression, target, key_match
        )
        if native_partitions:
            return lookup
        return sql.SQL("CASE WHEN target.xmax <> 0 THEN {} END").format(lookup)

    def row_of(alias: str) -> sql.Composable:
        return sql.SQL("ROW({})").format(
            sql.SQL(", ").join(sql.Identifier(alias, c) for c in partition_columns)
        )

    moved = (
        previous(sql.SQL("{} IS DISTINCT FROM {}").format(row_of("previous"), row_of("target")))
        if partition_columns and not native_partitions
        else sql.SQL("false")
    )
    inserted = (
        sql.SQL("NOT EXISTS {}").format(previous(sql.SQL("")))
        if native_partitions
        else sql.SQL("(target.xmax = 0)")
    )
    returned = [
        sql.SQL("{} AS inserted").format(inserted),
        *(sql.SQL("target.{}").format(sql.Identifier(c)) for c in partition_columns),
        sql.SQL("target.{}").format(sql.Identifier(hash_column)),
        sql.SQL("{} AS {}").format(
            previous(sql.SQL("previous.{}").format(sql.Identifier(hash_column))),
            sql.Identifier(PREVIOUS_HASH),
        ),
        sql.SQL("{} AS {}").format(moved, sql.Identifier(MOVED)),
    ]
    statement = sql.SQL(
        "INSERT INTO {target} AS target ({cols}) SELECT {cols} FROM {staging}"
        " ON CONFLICT ({key}) DO UPDATE SET {assignments}"
        " WHERE target.{hash} IS DISTINCT FROM excluded.{hash}"
        " RETURNING {returned}"
    ).format(
        target=target,
        cols=names(columns),
        staging=sql.Identifier(staging),
        key=names(primary_key),
        assignments=sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
            for c in columns
            if c not in primary_key
        ),
        hash=sql.Identifier(hash_column),
        returned=sql.SQL(", ").join(returned),
    )
    return render(statement)


def copy_partition_rows(
    table_slice: TableSlice,
    partition: PartitionSlice,
    pg_types: dict[str, str],
    source: str,
    target: str,
    columns: list[str],
) -> tuple[str, list[object]]:
    """INSERT into ``target`` the rows of temporary table ``source`` that ``partition`` owns."""
    params = Params()
    statement = sql.SQL("INSERT INTO {} ({cols}) SELECT {cols} FROM {} WHERE {}").format(
        sql.Identifier(table_slice.schema, target),
        sql.Identifier(source),
        partition_predicate(table_slice, partition, pg_types, params),
        cols=names(columns),
    )
    return render(statement), params.values
