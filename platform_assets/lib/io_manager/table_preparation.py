"""Preparing the table for a write: create it, or check and evolve it, under a lock on the table."""

from dataclasses import dataclass, replace

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.io_manager.write_request import BULK_LOAD_MODES, WriteMode, WriteRequest
from platform_assets.lib.tables import (
    bulk_load,
    content_digests,
    ddl,
    layout,
    native_partitions,
    statements,
)
from platform_assets.lib.tables.reader_access import hide_from_reader
from platform_assets.lib.tables.schema import (
    Column,
    SchemaMismatchError,
    plan_evolution,
    postgres_type,
    table_columns,
)
from platform_assets.lib.tables.table_slice import TableSlice
from platform_assets.lib.warehouse.transactions import roll_back


@dataclass(frozen=True)
class PreparedTable:
    """The table's columns once prepared, the index DDL still to run after the load, and roughly
    how many rows an existing table holds (``None`` if new, or not a plain table).

    ``deferred_ddl`` is non-empty only when this write created the table: the creation is then
    still uncommitted, the write continues in the same transaction, and the primary key and
    indexes are built once the rows are in. Building an index over loaded rows is much cheaper
    than maintaining it row by row, and nobody can see the table before it is complete. An
    existing table gets the same treatment when the write outweighs it (``bulk_load``).
    """

    columns: list[Column]
    deferred_ddl: tuple[str, ...] = ()
    table_rows: float | None = None
    native: bool = False  # a Postgres-native partitioned table (see native_partitions)
    widened: tuple[Column, ...] = ()  # columns widened safely before this write (tables.schema)
    # Why an empty table that could not take the declared columns was recreated (else None).
    recreated: str | None = None

    def is_bulk_load(self, request: WriteRequest) -> bool:
        """Whether ``request`` loads enough rows into this existing table to rebuild its
        indexes rather than maintain them."""
        return request.mode in BULK_LOAD_MODES and bulk_load.outweighs(
            self.table_rows, request.expected_rows, request.bulk_load_min_rows
        )


def prepare_table(conn: adbc.Connection, request: WriteRequest) -> PreparedTable:
    """Create the schema and table, or add the frame's new columns; return the columns.

    Runs under an advisory lock on the table, so concurrent first writers do not race each other's
    CREATE TABLE. An existing table is evolved in its own short transaction, committed here, so
    writers of different partitions never wait on each other. A new table is left uncommitted for
    the write to load (see ``PreparedTable``); a concurrent first writer waits until it commits.
    """
    table_slice = request.table_slice
    schema, table = table_slice.schema, table_slice.table
    cursor = conn.cursor()
    try:
        cursor.execute(
            statements.ADVISORY_XACT_LOCK, parameters=(f"ddl|{table_slice.qualified_name}",)
        )
        cursor.execute(ddl.create_schema(schema))
        content_digests.prepare(cursor)
        layout.prepare(cursor)
        for side_write in request.side_writes:
            side_write.prepare(cursor)
        existing = table_columns(cursor, schema, table)
        table_name = statements.table_identifier(schema, table)
        recreated = None
        if existing:
            try:
                evolution = plan_evolution(
                    existing,
                    request.schema,
                    table_slice.qualified_name,
                    None if request.required is None else request.not_null,
                )
                layout.check(
                    cursor, table_name, list(table_slice.partition_columns), request.primary_key
                )
            except SchemaMismatchError as mismatch:
                recreated = _drop_if_empty(cursor, table_slice, table_name, mismatch)
                existing = []
        if existing:
            for column in evolution.additions:
                cursor.execute(ddl.add_column(schema, table, column))
                existing.append(column)
            for column in evolution.widenings:
                cursor.execute(ddl.alter_column_type(schema, table, column))
            for name in evolution.relaxed:
                cursor.execute(ddl.drop_not_null(schema, table, name))
            widened = {column.name: column.pg_type for column in evolution.widenings}
            existing = [
                replace(
                    column,
                    pg_type=widened.get(column.name, column.pg_type),
                    not_null=column.not_null and column.name not in evolution.relaxed,
                )
                for column in existing
            ]
            native = native_partitions.is_partitioned(cursor, table_name)
            if request.native_partitions and not native:
                raise native_partitions.NativePartitionsError(
                    f"{table_slice.qualified_name} exists as a plain table: native partitions "
                    "apply to new tables; moving its rows over is a migration"
                )
            if native and request.mode is not WriteMode.REPLACE_PARTITION:
                native_partitions.ensure_partitions(
                    cursor, table_slice, _partition_type(existing, table_slice)
                )
            hide_from_reader(cursor, schema, table, request.hidden_from_reader)
            table_rows = bulk_load.estimated_rows(cursor, table_name)
            conn.commit()
            return PreparedTable(
                existing,
                table_rows=table_rows,
                native=native,
                widened=tuple(evolution.widenings),
            )
        not_null = request.not_null
        columns = [Column(f.name, postgres_type(f), f.name in not_null) for f in request.schema]
        layout.record(
            cursor,
            statements.table_identifier(schema, table),
            list(table_slice.partition_columns),
        )
        if request.native_partitions:
            prepared = _create_partitioned(cursor, request, columns)
            hide_from_reader(cursor, schema, table, request.hidden_from_reader)
            return prepared
        # An upsert's ON CONFLICT needs the primary key before its merge: nothing waits for it.
        deferred = request.mode is not WriteMode.UPSERT
        primary_key = [] if deferred else request.primary_key
        cursor.execute(ddl.create_table(schema, table, columns, primary_key))
        hide_from_reader(cursor, schema, table, request.hidden_from_reader)
        indexing = _index_ddl(request, with_primary_key=deferred)
        if deferred:
            return PreparedTable(columns, tuple(indexing), recreated=recreated)
        for statement in indexing:
            cursor.execute(statement)
        return PreparedTable(columns, recreated=recreated)
    except BaseException:
        roll_back(conn)
        raise
    finally:
        cursor.close()


def _drop_if_empty(
    cursor: adbc.Cursor, table_slice: TableSlice, table_name: str, mismatch: SchemaMismatchError
) -> str:
    """Drop the table that cannot take the declared columns, key or partition columns, if it
    holds no row (a first load whose rows were all refused, then a corrected spec): there is
    nothing to migrate, and the write creates it anew. Returns why; re-raises ``mismatch`` for a
    table holding rows (the message names the change and the migration to write).

    The table is locked before it is found empty, so a concurrent load's rows are either
    committed (and seen) or not yet begun. Without CASCADE: a view on the table makes the DROP
    fail rather than vanish. Grants on the dropped table are not carried over.
    """
    schema, table = table_slice.schema, table_slice.table
    if native_partitions.is_partitioned(cursor, table_name):
        raise mismatch
    cursor.execute(ddl.lock_exclusive(schema, table))
    holds_rows = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, table))
    cursor.execute(holds_rows.as_string())
    if cursor.fetchone()[0]:
        raise mismatch
    cursor.execute(ddl.drop_table(schema, table))
    content_digests.forget_table(cursor, table_name)
    return str(mismatch)


def _partition_type(columns: list[Column], table_slice: TableSlice) -> str:
    return {c.name: c.pg_type for c in columns}[table_slice.partition_columns[0]]


def _create_partitioned(
    cursor: adbc.Cursor, request: WriteRequest, columns: list[Column]
) -> PreparedTable:
    """Create the table natively partitioned, with its key and indexes (on an empty parent they
    cost nothing); the partitions come with the write."""
    table_slice = request.table_slice
    schema, table = table_slice.schema, table_slice.table
    strategy = native_partitions.partition_by(table_slice)
    native_partitions.check_primary_key(table_slice, request.primary_key)
    cursor.execute(
        ddl.create_table(schema, table, columns, request.primary_key, partition_by=strategy)
    )
    for index_columns in request.indexes:
        cursor.execute(ddl.create_index(schema, table, index_columns))
    if request.mode is not WriteMode.REPLACE_PARTITION:
        native_partitions.ensure_partitions(
            cursor, table_slice, _partition_type(columns, table_slice)
        )
    return PreparedTable(columns, native=True)


def _index_ddl(request: WriteRequest, with_primary_key: bool) -> list[str]:
    """The indexes a new table gets, and its primary key if it was not declared inline."""
    table_slice = request.table_slice
    schema, table = table_slice.schema, table_slice.table
    index_statements = []
    if request.primary_key and with_primary_key:
        index_statements.append(ddl.add_primary_key(schema, table, request.primary_key))
    if table_slice.partition_columns:
        index_statements.append(
            ddl.create_index(
                schema, table, list(table_slice.partition_columns), request.partition_index
            )
        )
    index_statements.extend(ddl.create_index(schema, table, columns) for columns in request.indexes)
    return index_statements
