"""Writing a slice of a table in one transaction, whatever the mode.

Readers see a partition's old rows or its new ones, never half; a failure anywhere rolls the whole
write back. Writers of the same partition serialise on a transaction-scoped advisory lock.
"""

from collections.abc import Iterator
from dataclasses import replace

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from platform_assets.lib.ingestion.result import IngestedChunk
from platform_assets.lib.io_manager.chunk_stream import ChunkStream, copy_stream, partition_bounds
from platform_assets.lib.io_manager.replace_partition import delete_partitions
from platform_assets.lib.io_manager.replace_table import swap_in_new_table
from platform_assets.lib.io_manager.selected_rows import insert_selected
from platform_assets.lib.io_manager.table_preparation import PreparedTable
from platform_assets.lib.io_manager.upsert import MergeOutcome, merge_upsert
from platform_assets.lib.io_manager.write_request import (
    DuplicateKeyError,
    PartitionWriteError,
    WriteMode,
    WriteRequest,
    WriteResult,
)
from platform_assets.lib.row_hash import ROW_HASH_COLUMN, ContentDigest
from platform_assets.lib.tables import bulk_load, content_digests, native_partitions, statements
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.table_slice import TableSlice
from platform_assets.lib.warehouse.transactions import roll_back

CARDINALITY_VIOLATION = "21000"  # ON CONFLICT met the same key twice in one statement


def write_slice(
    conn: adbc.Connection,
    request: WriteRequest,
    prepared: PreparedTable,
    chunks: Iterator[IngestedChunk],
) -> WriteResult:
    """Stream ``chunks`` into the slice in one transaction (see the module docstring)."""
    table_slice = request.table_slice
    pg_types = {column.name: column.pg_type for column in prepared.columns}
    bounds = partition_bounds(table_slice, pg_types)
    stream = ChunkStream(request, chunks, bounds)
    zero = dict.fromkeys(stream.keys, 0)
    deleted, merge = dict(zero), None
    rebuilt: tuple[str, ...] = ()

    cursor = conn.cursor()
    try:
        for name, value in request.settings.items():
            cursor.execute(statements.SET_LOCAL, parameters=(name, value))
        cursor.execute(*statements.advisory_xact_locks(table_slice.lock_keys()))
        if request.selected is not None:
            deleted = delete_partitions(cursor, table_slice, pg_types)
            inserted = insert_selected(cursor, request.selected, table_slice, pg_types)
            stream.tally.rows_loaded.update(inserted)
        elif request.mode is WriteMode.REPLACE_TABLE:
            deleted = {WHOLE_TABLE: swap_in_new_table(cursor, request, stream)}
        elif request.mode is WriteMode.UPSERT:
            merge = merge_upsert(cursor, request, stream, bounds, prepared.native)
        elif prepared.native and request.mode is WriteMode.REPLACE_PARTITION:
            deleted = native_partitions.replace_partitions(
                cursor,
                table_slice,
                prepared.columns,
                request.primary_key,
                request.indexes,
                lambda table, schema: copy_stream(cursor, stream, table, schema),
                pg_types,
            )
        else:
            if prepared.is_bulk_load(request):
                rebuilt = bulk_load.drop_indexes(cursor, table_slice.schema, table_slice.table)
            if request.mode is WriteMode.REPLACE_PARTITION:
                deleted = delete_partitions(cursor, table_slice, pg_types)
            copy_stream(cursor, stream, table_slice.table, table_slice.schema)
        stream.close()
        for statement in prepared.deferred_ddl + rebuilt:
            cursor.execute(statement)
        digests = _digests_after(cursor, request, stream, merge, pg_types)
        for side_write in request.side_writes:
            side_write.apply(cursor, stream.tally)
        conn.commit()
    except BaseException as error:
        stream.close()
        roll_back(conn)
        failure = _failure(request, stream, error)
        if failure is error:
            raise
        raise failure from error
    finally:
        stream.discard()
        cursor.close()
    in_frame = dict(stream.tally.rows_loaded)
    inserted = in_frame if merge is None else merge.inserted
    updated = dict(zero) if merge is None else merge.updated
    version = ContentDigest()
    for digest in digests.values():
        version.merge(digest)
    return WriteResult(
        columns=tuple(prepared.columns),
        rows_deleted=deleted,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_unchanged={key: in_frame[key] - inserted[key] - updated[key] for key in in_frame},
        row_counts={key: digest.count for key, digest in digests.items()},
        content_version=version.hexdigest(),
        rows_moved=0 if merge is None else merge.moved_rows,
        indexes_rebuilt=len(rebuilt),
    )


def _failure(request: WriteRequest, stream: ChunkStream, error: BaseException) -> BaseException:
    """The error to raise for a failed write: the stream's own if it broke, else a clear one."""
    if stream.error is not None:
        return stream.error
    if not isinstance(error, adbc.Error):
        return error
    label = f"{request.table_slice.qualified_name} partition(s) {request.table_slice.label}"
    if getattr(error, "sqlstate", None) == CARDINALITY_VIOLATION:
        return DuplicateKeyError(
            f"{label}: rows in different chunks repeat a primary key {request.primary_key};"
            " nothing was written."
        )
    return PartitionWriteError(
        f"{request.mode} of {label} failed and was rolled back; the previous rows are unchanged."
        f" Cause: {error}"
    )


def _digests_after(
    cursor: adbc.Cursor,
    request: WriteRequest,
    stream: ChunkStream,
    merge: MergeOutcome | None,
    pg_types: dict[str, str],
) -> dict[str, ContentDigest]:
    """Each written partition's content digest once this write commits; stored with it.

    A replace knows it from the rows it loaded. An append or upsert adds its changes to the stored
    digest; a partition without one is scanned once. An upsert that moved rows between partitions
    cannot say which partitions lost them: every digest of the table is dropped, and the written
    partitions are scanned.
    """
    table_slice = request.table_slice
    table_name = statements.table_identifier(table_slice.schema, table_slice.table)
    written = stream.tally.digests
    if request.selected is not None:  # inserted by the database: its hashes never passed here
        digests = _scanned_digests(cursor, table_slice, pg_types, set(stream.keys))
    elif request.mode in (WriteMode.REPLACE_PARTITION, WriteMode.REPLACE_TABLE):
        digests = {key: written[key] for key in stream.keys}
    else:
        if merge is not None and merge.moved_rows:
            content_digests.forget_table(cursor, table_name)
        stored = content_digests.load(cursor, table_name, stream.keys)
        changes = written if merge is None else merge.changes
        for key, digest in stored.items():
            digest.merge(changes[key])
        missing = set(stream.keys) - set(stored)
        digests = stored | _scanned_digests(cursor, table_slice, pg_types, missing)
    content_digests.store(cursor, table_name, digests)
    return digests


def _scanned_digests(
    cursor: adbc.Cursor, table_slice: TableSlice, pg_types: dict[str, str], keys: set[str]
) -> dict[str, ContentDigest]:
    """The digests of partitions ``keys`` as they now stand in the table, by scanning them.

    Postgres concatenates each partition's ``_row_hash`` values into one bytea, in one ``GROUP
    BY`` partition statement, so nothing is shipped a row at a time. Used where no digest is
    stored yet (see ``content_digests``) and for rows the database inserted itself.
    """
    if not keys:
        return {}
    scanned = replace(
        table_slice, partitions=tuple(p for p in table_slice.partitions if p.key in keys)
    )
    query, params, of_row = statements.partition_hashes(scanned, pg_types, ROW_HASH_COLUMN)
    cursor.execute(query, parameters=params or None)
    digests = {key: ContentDigest() for key in keys}
    for *partition, concatenated in cursor.fetchall():
        joined = concatenated or b""
        digests[of_row.key_of(tuple(partition))].add(
            pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(16), len(joined) // 16, [None, pa.py_buffer(joined)]
            )
        )
    return digests
