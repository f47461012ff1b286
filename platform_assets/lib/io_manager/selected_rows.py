"""Rows computed by a SQL ``SELECT`` in the warehouse, written without leaving it.

An asset whose rows are an aggregate or a join of upstream tables returns ``SelectedRows``; the
IO manager replaces its partitions (or its whole table) with one ``INSERT … SELECT`` inside the
same one-transaction replace as any other write: the rows never travel to Python, so memory stays
flat whatever the range, and sums stay exact ``numeric``.

The query names its upstream tables as ``{name}`` and the run's window as ``{window_start}`` and
``{window_end}`` (the first partition's start and the last one's end, typed like the asset's
partition column); they are filled in as quoted identifiers and bound parameters, never as text.
A row the query returns outside the run's partitions (or with a null partition column) fails the
write, and nothing is committed, as for a frame.

Each row's ``_row_hash`` is computed by Postgres (``md5`` of the row's text form), so content
versions and unchanged-row detection work as for frames, but the hashes differ from those of the
same values written from a frame: a table is written by SQL or by frames, not both.
"""

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
from psycopg import sql

from platform_assets.lib.io_manager.write_request import RowsOutsidePartitionError
from platform_assets.lib.row_hash import ROW_HASH_COLUMN
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.table_slice import WHOLE_TABLE, TableSlice

WINDOW_PLACEHOLDERS = ("window_start", "window_end")


class SelectQueryError(ValueError):
    """The query names a placeholder it was not given, or the asset cannot bind a window."""


@dataclass(frozen=True)
class SelectedRows:
    """A ``SELECT`` whose rows become the output's rows (see the module docstring).

    ``columns`` are the asset's declared columns (a Postgres type each, as ``postgres_type``
    metadata): the table is created and checked from them, and the query must return exactly
    those columns (by name; the order does not matter). ``tables`` maps each ``{name}`` of the
    query to the ``(schema, table)`` it stands for. ``source`` names the query in errors.
    """

    query: str
    tables: Mapping[str, tuple[str, str]]
    columns: pa.Schema
    source: str


def _window(table_slice: TableSlice, pg_types: dict[str, str], params: statements.Params) -> dict:
    """``{window_start, window_end}`` as bound parameters, for a run of contiguous time windows;
    nothing for an unpartitioned table (its query has no window)."""
    if not table_slice.partitions:
        return {}
    windows = [p.window for p in table_slice.partitions]
    if any(window is None for window in windows):
        raise SelectQueryError(
            f"{table_slice.qualified_name}: a SQL asset needs time-window partitions (or none)"
        )
    ordered = sorted(windows, key=lambda w: w.start)  # type: ignore[union-attr]
    if any(a.end != b.start for a, b in itertools.pairwise(ordered)):  # type: ignore[union-attr]
        raise SelectQueryError(f"{table_slice.qualified_name}: a run's partitions must be a range")
    pg_type = pg_types[table_slice.partition_columns[0]]
    start = statements.window_bounds(ordered[0], pg_type)[0]  # type: ignore[arg-type]
    end = statements.window_bounds(ordered[-1], pg_type)[1]  # type: ignore[arg-type]
    return {"window_start": params.add(start), "window_end": params.add(end)}


def insert_selected(
    cursor: adbc.Cursor, rows: SelectedRows, table_slice: TableSlice, pg_types: dict[str, str]
) -> dict[str, int]:
    """``INSERT`` the query's rows into the slice's table with their ``_row_hash``, in one
    statement; return how many went to each partition. Raises ``RowsOutsidePartitionError`` when
    a row belongs to none of the slice's partitions (the caller rolls back)."""
    params = statements.Params()
    placeholders = {
        **_window(table_slice, pg_types, params),
        **{name: sql.Identifier(*where) for name, where in rows.tables.items()},
    }
    try:
        select = sql.SQL(rows.query.strip().rstrip(";")).format(**placeholders)  # type: ignore[arg-type]
    except KeyError as unknown:
        given = sorted(placeholders)
        raise SelectQueryError(
            f"{rows.source}: the query uses {{{unknown.args[0]}}}, which is none of {given}"
        ) from unknown
    of_row = statements.PartitionOfRow(table_slice, pg_types, params)
    inside = statements.slice_predicate(table_slice, pg_types, params)
    columns = statements.names(rows.columns.names)
    statement = sql.SQL(
        "WITH inserted AS ("
        " INSERT INTO {table} ({columns}, {hash})"
        " SELECT {columns}, decode(md5(ROW({columns})::text), 'hex') FROM ({select}) AS selected"
        " RETURNING {of_row}, coalesce({inside}, false) AS _inside)"
        " SELECT {grouping}, _inside, count(*) FROM inserted GROUP BY {grouping}, _inside"
    ).format(
        table=sql.Identifier(table_slice.schema, table_slice.table),
        columns=columns,
        hash=sql.Identifier(ROW_HASH_COLUMN),
        select=select,
        of_row=of_row.select(),
        inside=inside,
        grouping=of_row.grouping(),
    )
    cursor.execute(statement.as_string(), parameters=params.values or None)
    counts = dict.fromkeys([p.key for p in table_slice.partitions] or [WHOLE_TABLE], 0)
    outside = 0
    for *partition, is_inside, rows_inserted in cursor.fetchall():
        if is_inside:
            counts[of_row.key_of(tuple(partition))] += int(rows_inserted)
        else:
            outside += int(rows_inserted)
    if outside:
        raise RowsOutsidePartitionError(
            f"{table_slice.qualified_name}: {outside} rows of {rows.source} have"
            f" {list(table_slice.partition_columns)} outside partition(s) {table_slice.label} or"
            " null; nothing was written."
        )
    return counts
