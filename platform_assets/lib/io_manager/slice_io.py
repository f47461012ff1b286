"""Write and read slices of a table through ADBC, one transaction per write.

Write modes:

- ``replace_partition``: DELETE exactly each partition's rows, COPY the new ones.
- ``upsert``: COPY into a temporary staging table, then ``INSERT … ON CONFLICT (primary key) DO
  UPDATE … WHERE target._row_hash IS DISTINCT FROM excluded._row_hash``: unchanged rows are not
  rewritten at all.
- ``append``: COPY the new rows in.
- ``replace_table`` (unpartitioned): COPY into a new table shaped like the target, then swap the two
  by renaming and drop the old one; readers see the old table or the new one, never a mix.

Readers see a partition's old rows or its new ones, never half; a failure anywhere rolls the whole
write back. Writers of the same partition serialise on a transaction-scoped advisory lock.
"""

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pyarrow as pa

from platform_assets.lib.dead_letters.side_writes import SideWrite, WriteTally
from platform_assets.lib.ingestion.result import IngestedChunk
from platform_assets.lib.io_manager import (
    bulk_load,
    content_digests,
    native_partitions,
    statements,
    table_layout,
)
from platform_assets.lib.io_manager.content_digests import WHOLE_TABLE
from platform_assets.lib.io_manager.partition_rows import OUTSIDE, assign_partitions
from platform_assets.lib.io_manager.table_schema import Column, plan_evolution, postgres_type
from platform_assets.lib.io_manager.table_slice import PartitionSlice, TableSlice
from platform_assets.lib.prefetch import Prefetcher
from platform_assets.lib.row_hash import ROW_HASH_COLUMN, ContentDigest, row_hashes

INGEST_BATCH_ROWS = 65_536  # COPY streams batch by batch: memory stays bounded by one batch
PREFETCH_BATCHES = 4  # batches produced ahead of ADBC: overlap without holding a whole chunk
CARDINALITY_VIOLATION = "21000"  # ON CONFLICT met the same key twice in one statement


class WriteMode(StrEnum):
    """How a write changes the table (see the module docstring)."""

    REPLACE_PARTITION = "replace_partition"
    UPSERT = "upsert"
    APPEND = "append"
    REPLACE_TABLE = "replace_table"


# The modes that COPY straight into the target table, so can rebuild its indexes (bulk_load).
BULK_LOAD_MODES = (WriteMode.REPLACE_PARTITION, WriteMode.APPEND)


class PartitionWriteError(Exception):
    """Writing a slice failed; the transaction was rolled back, so its previous rows are intact."""


class RowsOutsidePartitionError(ValueError):
    """The frame holds rows whose partition columns fall outside the partitions being written."""


class DuplicateKeyError(ValueError):
    """The frame repeats a primary key, which an upsert cannot apply unambiguously."""


@dataclass(frozen=True)
class WriteRequest:
    """One write: where, the columns written (``_row_hash`` is added while streaming), how."""

    table_slice: TableSlice
    data_schema: pa.Schema
    mode: WriteMode
    hash_columns: list[str]
    primary_key: list[str] = field(default_factory=list)
    indexes: list[list[str]] = field(default_factory=list)
    partition_index: str = "btree"
    settings: dict[str, str] = field(default_factory=dict)
    side_writes: tuple[SideWrite, ...] = ()
    expected_rows: int = 0  # rows the write loads at least (its first chunk's): see bulk_load
    native_partitions: bool = False  # a new table is created natively partitioned (see there)
    bulk_load_min_rows: int | None = bulk_load.BULK_LOAD_MIN_ROWS

    @property
    def schema(self) -> pa.Schema:
        """The columns written: the data's, then ``_row_hash``."""
        return self.data_schema.append(pa.field(ROW_HASH_COLUMN, pa.binary(16)))


class ChunkStream:
    """The chunks as COPY-sized batches, each given its ``_row_hash`` as ADBC pulls it.

    Each chunk is checked (rows inside the partitions; unique keys for an upsert) and tallied (rows
    per partition, rows read, dead letters, content digest) as it passes, so memory stays bounded
    by a few batches whatever the partition's size. Reading, validating and hashing run in a
    thread a few batches ahead of ADBC, so they overlap the driver and Postgres loading the
    previous batches. An error raised here is kept in ``error``: ADBC reports it only as a broken
    stream.
    """

    def __init__(
        self, request: WriteRequest, chunks: Iterator[IngestedChunk], bounds: list
    ) -> None:
        self._request = request
        self._chunks = chunks
        self._bounds = bounds
        self.keys = [p.key for p in request.table_slice.partitions] or [WHOLE_TABLE]
        self.tally = WriteTally(rows_loaded=Counter(dict.fromkeys(self.keys, 0)))
        self.error: BaseException | None = None
        self._prefetcher: Prefetcher | None = None

    def reader(self) -> pa.RecordBatchReader:
        """A reader ADBC's ingest pulls from; the batches are produced a little ahead of it."""
        self._prefetcher = Prefetcher(self._batches(), PREFETCH_BATCHES, name="chunk-stream")
        return pa.RecordBatchReader.from_batches(self._request.schema, self._prefetcher)

    def close(self) -> None:
        """Stop producing (after a failure) and wait; the tally is final once this returns."""
        if self._prefetcher is not None:
            self._prefetcher.close()

    def discard(self) -> None:
        """Stop, and delete what was spooled: the write is over, committed or not."""
        self.close()
        self.tally.dead_letters.close()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for chunk in self._chunks:
                rows = self._conform(chunk.rows)
                assignment = self._check_and_tally(rows, chunk)
                start = 0
                for batch in rows.to_batches(max_chunksize=INGEST_BATCH_ROWS):
                    hashes = row_hashes(pa.Table.from_batches([batch]), self._request.hash_columns)
                    part = assignment[start : start + batch.num_rows]
                    start += batch.num_rows
                    for index, key in enumerate(self.keys):
                        self.tally.digests[key].add(hashes.filter(part == index))
                    yield pa.RecordBatch.from_arrays(
                        [*batch.columns, hashes], schema=self._request.schema
                    )
        except BaseException as error:
            self.error = error
            raise

    def _conform(self, rows: pa.Table) -> pa.Table:
        expected = self._request.data_schema
        if rows.schema.names != expected.names:
            raise ValueError(
                f"{self._request.table_slice.qualified_name}: a chunk has columns "
                f"{rows.schema.names}, the first had {expected.names}"
            )
        return rows if rows.schema.equals(expected) else rows.cast(expected)

    def _check_and_tally(self, rows: pa.Table, chunk: IngestedChunk) -> np.ndarray:
        """Check and count the chunk; return each row's index into ``keys``."""
        table_slice = self._request.table_slice
        assignment = assign_partitions(rows, table_slice, self._bounds)
        _check_rows_inside(table_slice, assignment, rows.num_rows)
        if self._request.mode is WriteMode.UPSERT:
            _check_unique_keys(self._request, rows)
        self.tally.rows_loaded.update(_rows_per_partition(table_slice, assignment))
        self.tally.rows_read.update(chunk.rows_read)
        self.tally.add_file_lines(chunk.file_lines)
        self.tally.rules_broken.update(chunk.rules_broken)
        self.tally.dead_letters.add(chunk.dead_letters)
        if chunk.checkpoint is not None:
            self.tally.checkpoint = chunk.checkpoint
        return assignment


@dataclass(frozen=True)
class WriteResult:
    """What one write did, per partition key (``*`` for an unpartitioned table)."""

    columns: tuple[Column, ...]
    rows_deleted: dict[str, int]
    rows_inserted: dict[str, int]
    rows_updated: dict[str, int]
    rows_unchanged: dict[str, int]
    row_counts: dict[str, int]
    table_row_count: int  # the whole table's rows once the write commits
    content_version: str
    rows_moved: int = 0  # rows whose partition columns an upsert changed
    indexes_rebuilt: int = 0  # indexes a bulk load dropped and built again (see bulk_load)

    def changes(self, key: str) -> dict[str, int]:
        """Rows deleted, inserted, updated and left unchanged in partition ``key``."""
        return {
            "rows_deleted": self.rows_deleted[key],
            "rows_inserted": self.rows_inserted[key],
            "rows_updated": self.rows_updated[key],
            "rows_unchanged": self.rows_unchanged[key],
        }


def table_columns(cursor: adbc.Cursor, schema: str, table: str) -> list[Column]:
    """The table's columns in order, or an empty list if the table does not exist."""
    cursor.execute(
        statements.TABLE_COLUMNS, parameters=(statements.table_identifier(schema, table),)
    )
    return [Column(name, pg_type) for name, pg_type in cursor.fetchall()]


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
    widened: tuple[Column, ...] = ()  # columns widened safely before this write (table_schema)

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
        cursor.execute(statements.create_schema(schema))
        content_digests.prepare(cursor)
        table_layout.prepare(cursor)
        for side_write in request.side_writes:
            side_write.prepare(cursor)
        existing = table_columns(cursor, schema, table)
        if existing:
            evolution = plan_evolution(existing, request.schema, table_slice.qualified_name)
            for column in evolution.additions:
                cursor.execute(statements.add_column(schema, table, column))
                existing.append(column)
            for column in evolution.widenings:
                cursor.execute(statements.alter_column_type(schema, table, column))
            widened = {column.name: column for column in evolution.widenings}
            existing = [widened.get(column.name, column) for column in existing]
            table_name = statements.table_identifier(schema, table)
            table_layout.check(
                cursor, table_name, list(table_slice.partition_columns), request.primary_key
            )
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
            table_rows = bulk_load.estimated_rows(cursor, table_name)
            conn.commit()
            return PreparedTable(
                existing,
                table_rows=table_rows,
                native=native,
                widened=tuple(evolution.widenings),
            )
        columns = [Column(f.name, postgres_type(f)) for f in request.schema]
        table_layout.record(
            cursor,
            statements.table_identifier(schema, table),
            list(table_slice.partition_columns),
        )
        if request.native_partitions:
            return _create_partitioned(cursor, request, columns)
        # An upsert's ON CONFLICT needs the primary key before its merge: nothing waits for it.
        deferred = request.mode is not WriteMode.UPSERT
        primary_key = [] if deferred else request.primary_key
        cursor.execute(statements.create_table(schema, table, columns, primary_key))
        ddl = _index_ddl(request, with_primary_key=deferred)
        if deferred:
            return PreparedTable(columns, tuple(ddl))
        for statement in ddl:
            cursor.execute(statement)
        return PreparedTable(columns)
    except BaseException:
        _roll_back(conn)
        raise
    finally:
        cursor.close()


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
        statements.create_table(schema, table, columns, request.primary_key, partition_by=strategy)
    )
    for index_columns in request.indexes:
        cursor.execute(statements.create_index(schema, table, index_columns))
    if request.mode is not WriteMode.REPLACE_PARTITION:
        native_partitions.ensure_partitions(
            cursor, table_slice, _partition_type(columns, table_slice)
        )
    return PreparedTable(columns, native=True)


def _roll_back(conn: adbc.Connection) -> None:
    """Roll back after a failure. A connection too broken to roll back is closed by the pool
    anyway (it never goes back after an error); the error that broke it is the one to report."""
    with contextlib.suppress(adbc.Error):
        conn.rollback()


def _index_ddl(request: WriteRequest, with_primary_key: bool) -> list[str]:
    """The indexes a new table gets, and its primary key if it was not declared inline."""
    table_slice = request.table_slice
    schema, table = table_slice.schema, table_slice.table
    ddl = []
    if request.primary_key and with_primary_key:
        ddl.append(statements.add_primary_key(schema, table, request.primary_key))
    if table_slice.partition_columns:
        ddl.append(
            statements.create_index(
                schema, table, list(table_slice.partition_columns), request.partition_index
            )
        )
    ddl.extend(statements.create_index(schema, table, columns) for columns in request.indexes)
    return ddl


def _partition_bounds(
    table_slice: TableSlice, pg_types: dict[str, str]
) -> list[tuple[object, object]]:
    if not table_slice.partitions or table_slice.partitions[0].window is None:
        return []
    pg_type = pg_types[table_slice.partition_columns[0]]
    return [statements.window_bounds(p.window, pg_type) for p in table_slice.partitions]  # type: ignore[arg-type]


def _rows_per_partition(table_slice: TableSlice, assignment: np.ndarray) -> dict[str, int]:
    if not table_slice.partitions:
        return {WHOLE_TABLE: len(assignment)}
    counts = np.bincount(assignment[assignment != OUTSIDE], minlength=len(table_slice.partitions))
    return {p.key: int(n) for p, n in zip(table_slice.partitions, counts, strict=True)}


def _check_rows_inside(table_slice: TableSlice, assignment: np.ndarray, total: int) -> None:
    outside = int((assignment == OUTSIDE).sum())
    if outside:
        raise RowsOutsidePartitionError(
            f"{table_slice.qualified_name}: {outside} of {total} rows have "
            f"{list(table_slice.partition_columns)} outside partition(s) {table_slice.label} or "
            "null; nothing was written."
        )


def _check_unique_keys(request: WriteRequest, rows: pa.Table) -> None:
    if not request.primary_key:
        raise ValueError(
            f"{request.table_slice.qualified_name}: upsert needs metadata={{'primary_key': [...]}}"
        )
    keys = rows.select(request.primary_key).group_by(request.primary_key).aggregate([])
    repeated = rows.num_rows - keys.num_rows
    if repeated:
        raise DuplicateKeyError(
            f"{request.table_slice.qualified_name}: {repeated} rows repeat a primary key "
            f"{request.primary_key} of another row in the same frame; nothing was written."
        )


def _partitions_or_whole(table_slice: TableSlice) -> list[PartitionSlice | None]:
    return list(table_slice.partitions) or [None]


def _key(partition: PartitionSlice | None) -> str:
    return WHOLE_TABLE if partition is None else partition.key


def _delete_slice(
    cursor: adbc.Cursor, table_slice: TableSlice, pg_types: dict[str, str], bounds: list
) -> dict[str, int]:
    """Delete the slice's rows in one statement; return rows deleted per partition."""
    query, params = statements.delete_slice(table_slice, pg_types)
    cursor.execute(query, parameters=params or None)
    deleted = cursor.fetch_arrow_table()
    counts = {_key(p): 0 for p in _partitions_or_whole(table_slice)}
    rows = deleted.column("rows").to_pylist()
    if not table_slice.partitions:
        counts[WHOLE_TABLE] = rows[0]
    elif table_slice.partitions[0].window is not None:
        by_start = sorted(range(len(bounds)), key=lambda index: bounds[index][0])
        for bucket, count in zip(deleted.column("bucket").to_pylist(), rows, strict=True):
            counts[table_slice.partitions[by_start[bucket - 1]].key] += count
    else:
        for index, count in zip(assign_partitions(deleted, table_slice, bounds), rows, strict=True):
            counts[table_slice.partitions[index].key] += count
    return counts


def _scanned_digests(
    cursor: adbc.Cursor, table_slice: TableSlice, pg_types: dict[str, str], keys: set[str]
) -> dict[str, ContentDigest]:
    """The digests of partitions ``keys`` as they now stand in the table, by scanning them.

    Postgres concatenates each partition's ``_row_hash`` values into one bytea, so nothing is
    shipped a row at a time. Used only where no digest is stored yet (see ``content_digests``).
    """
    digests = {}
    for partition in _partitions_or_whole(table_slice):
        if _key(partition) not in keys:
            continue
        query, params = statements.partition_hashes(
            table_slice, partition, pg_types, ROW_HASH_COLUMN
        )
        cursor.execute(query, parameters=params or None)
        (concatenated,) = cursor.fetchone()
        joined = concatenated or b""
        digest = ContentDigest()
        digest.add(
            pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(16), len(joined) // 16, [None, pa.py_buffer(joined)]
            )
        )
        digests[_key(partition)] = digest
    return digests


@dataclass(frozen=True)
class MergeOutcome:
    """What an upsert's merge did, per partition key."""

    inserted: dict[str, int]
    updated: dict[str, int]
    changes: dict[str, ContentDigest]  # hashes written, minus the hashes they replaced
    moved_rows: int  # updated rows whose partition columns changed


def _upsert(
    cursor: adbc.Cursor, request: WriteRequest, stream: ChunkStream, bounds: list, native: bool
) -> MergeOutcome:
    """Stage and merge; return what changed in each partition."""
    table_slice = request.table_slice
    staging = f"staging_{uuid.uuid4().hex[:12]}"
    cursor.execute(
        statements.create_staging_like(
            table_slice.schema, table_slice.table, staging, temporary=True
        )
    )
    _ingest(cursor, stream, staging, schema=None)
    cursor.execute(
        statements.upsert_from_staging(
            table_slice.schema,
            table_slice.table,
            staging,
            request.schema.names,
            request.primary_key,
            ROW_HASH_COLUMN,
            list(table_slice.partition_columns),
            native_partitions=native,
        )
    )
    written = cursor.fetch_arrow_table()
    assignment = assign_partitions(written, table_slice, bounds)
    fresh = written.column("inserted").to_numpy(zero_copy_only=False).astype(bool)
    inserted, updated, changes = {}, {}, {}
    for index, key in enumerate(stream.keys):
        mine = assignment == index
        inserted[key] = int((mine & fresh).sum())
        updated[key] = int((mine & ~fresh).sum())
        change = ContentDigest()
        change.add(written.column(ROW_HASH_COLUMN).filter(mine))
        change.remove(written.column(statements.PREVIOUS_HASH).filter(mine & ~fresh))
        changes[key] = change
    moved = written.column(statements.MOVED).fill_null(False)
    return MergeOutcome(inserted, updated, changes, int(moved.to_numpy().sum()))


def _replace_table(cursor: adbc.Cursor, request: WriteRequest, stream: ChunkStream) -> int:
    """Load a new table and swap it in; return how many rows the old one held.

    The new table is loaded without indexes; once it has taken the old one's place, the old
    one's indexes and key are built on it under their own names, from Postgres's definitions
    (see ``bulk_load``). Where those would lose something, it is created with them instead.
    """
    schema, table = request.table_slice.schema, request.table_slice.table
    cursor.execute(statements.count_rows(schema, table))
    (replaced,) = cursor.fetchone()
    indexes = bulk_load.table_indexes(cursor, schema, table)
    suffix = uuid.uuid4().hex[:8]
    staging, retired = f"{table[:40]}__new_{suffix}", f"{table[:40]}__old_{suffix}"
    cursor.execute(
        statements.create_staging_like(
            schema, table, staging, temporary=False, with_indexes=indexes is None
        )
    )
    _ingest(cursor, stream, staging, schema)
    for statement in statements.swap_tables(schema, table, staging, retired):
        cursor.execute(statement)
    for index in indexes or ():
        cursor.execute(index.rebuild(schema, table))
    return replaced


def _ingest(cursor: adbc.Cursor, stream: ChunkStream, table: str, schema: str | None) -> None:
    """COPY the stream into ``schema.table``, or into temporary table ``table`` if no schema."""
    if schema is None:
        cursor.adbc_ingest(table, stream.reader(), mode="append", temporary=True)
    else:
        cursor.adbc_ingest(table, stream.reader(), mode="append", db_schema_name=schema)


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


def write_slice(
    conn: adbc.Connection,
    request: WriteRequest,
    prepared: PreparedTable,
    chunks: Iterator[IngestedChunk],
) -> WriteResult:
    """Stream ``chunks`` into the slice in one transaction (see the module docstring)."""
    table_slice = request.table_slice
    pg_types = {column.name: column.pg_type for column in prepared.columns}
    bounds = _partition_bounds(table_slice, pg_types)
    stream = ChunkStream(request, chunks, bounds)
    zero = dict.fromkeys(stream.keys, 0)
    deleted, merge = dict(zero), None
    rebuilt: tuple[str, ...] = ()

    cursor = conn.cursor()
    try:
        for name, value in request.settings.items():
            cursor.execute(statements.SET_LOCAL, parameters=(name, value))
        for lock_key in table_slice.lock_keys():
            cursor.execute(statements.ADVISORY_XACT_LOCK, parameters=(lock_key,))
        if request.mode is WriteMode.REPLACE_TABLE:
            deleted = {WHOLE_TABLE: _replace_table(cursor, request, stream)}
        elif request.mode is WriteMode.UPSERT:
            merge = _upsert(cursor, request, stream, bounds, prepared.native)
        elif prepared.native and request.mode is WriteMode.REPLACE_PARTITION:
            deleted = native_partitions.replace_partitions(
                cursor,
                table_slice,
                prepared.columns,
                request.primary_key,
                request.indexes,
                lambda table, schema: _ingest(cursor, stream, table, schema),
                pg_types,
            )
        else:
            if prepared.is_bulk_load(request):
                rebuilt = bulk_load.drop_indexes(cursor, table_slice.schema, table_slice.table)
            if request.mode is WriteMode.REPLACE_PARTITION:
                deleted = _delete_slice(cursor, table_slice, pg_types, bounds)
            _ingest(cursor, stream, table_slice.table, table_slice.schema)
        stream.close()
        for statement in prepared.deferred_ddl + rebuilt:
            cursor.execute(statement)
        digests = _digests_after(cursor, request, stream, merge, pg_types)
        for side_write in request.side_writes:
            side_write.apply(cursor, stream.tally)
        # dagster/row_count is the whole table's rows, as this write will commit them.
        cursor.execute(statements.count_rows(table_slice.schema, table_slice.table))
        table_rows = int(cursor.fetchone()[0])
        conn.commit()
    except BaseException as error:
        stream.close()
        _roll_back(conn)
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
        table_row_count=table_rows,
        content_version=version.hexdigest(),
        rows_moved=0 if merge is None else merge.moved_rows,
        indexes_rebuilt=len(rebuilt),
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
    if request.mode in (WriteMode.REPLACE_PARTITION, WriteMode.REPLACE_TABLE):
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


def read_slice(conn: adbc.Connection, table_slice: TableSlice, include_row_hash: bool) -> pa.Table:
    """The slice's rows as Arrow, read through ADBC's binary COPY (see ``SettingParams``)."""
    cursor = conn.cursor()
    try:
        existing = table_columns(cursor, table_slice.schema, table_slice.table)
        if not existing:
            raise LookupError(
                f"table {table_slice.qualified_name} does not exist: materialise its asset first"
            )
        names = (
            list(table_slice.columns)
            if table_slice.columns
            else [c.name for c in existing if include_row_hash or c.name != ROW_HASH_COLUMN]
        )
        missing = sorted(set(names) - {c.name for c in existing})
        if missing:
            raise LookupError(f"{table_slice.qualified_name} has no column(s) {missing}")
        (setup, values), query = statements.select_slice(
            table_slice, names, {c.name: c.pg_type for c in existing}
        )
        if values:
            cursor.execute(setup, parameters=values)
            cursor.fetchall()
        cursor.execute(query)  # no bind parameters: ADBC streams it as a binary COPY
        return cursor.fetch_arrow_table()
    finally:
        cursor.close()
        conn.rollback()
