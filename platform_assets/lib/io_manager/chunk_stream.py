"""The chunks of a write as COPY-sized Arrow batches, checked, tallied and hashed on the way."""

from collections import Counter
from collections.abc import Iterator

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pyarrow as pa

from platform_assets.lib.dead_letters.side_writes import WriteTally
from platform_assets.lib.dead_letters.spool import DeadLetterSpool
from platform_assets.lib.ingestion.result import IngestedChunk
from platform_assets.lib.io_manager.partition_rows import OUTSIDE, assign_partitions
from platform_assets.lib.io_manager.write_request import (
    DuplicateKeyError,
    RowsOutsidePartitionError,
    WriteMode,
    WriteRequest,
)
from platform_assets.lib.prefetch import Prefetcher
from platform_assets.lib.row_hash import row_hashes
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.table_slice import TableSlice

INGEST_BATCH_ROWS = 65_536  # COPY streams batch by batch: memory stays bounded by one batch


PREFETCH_BATCHES = 4  # batches produced ahead of ADBC: overlap without holding a whole chunk


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
        self.tally = WriteTally(
            rows_loaded=Counter(dict.fromkeys(self.keys, 0)),
            dead_letters=DeadLetterSpool(request.run_id),
        )
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
        # A dataset's chunk holds one partition's rows: its rules broken are that partition's.
        owner = next(iter(chunk.rows_read)) if len(chunk.rows_read) == 1 else WHOLE_TABLE
        self.tally.rules_broken[owner].update(chunk.rules_broken)
        self.tally.dead_letters.add(chunk.dead_letters)
        if chunk.checkpoint is not None:
            self.tally.checkpoint = chunk.checkpoint
        return assignment


def partition_bounds(
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


def copy_stream(cursor: adbc.Cursor, stream: ChunkStream, table: str, schema: str | None) -> None:
    """COPY the stream into ``schema.table``, or into temporary table ``table`` if no schema."""
    if schema is None:
        cursor.adbc_ingest(table, stream.reader(), mode="append", temporary=True)
    else:
        cursor.adbc_ingest(table, stream.reader(), mode="append", db_schema_name=schema)
