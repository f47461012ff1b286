"""``upsert``: stage the rows, then merge them on the primary key, leaving unchanged rows alone."""

import uuid
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.io_manager.chunk_stream import ChunkStream, copy_stream
from platform_assets.lib.io_manager.partition_rows import assign_partitions
from platform_assets.lib.io_manager.write_request import WriteRequest
from platform_assets.lib.row_hash import ROW_HASH_COLUMN, ContentDigest
from platform_assets.lib.tables import ddl, statements


@dataclass(frozen=True)
class MergeOutcome:
    """What an upsert's merge did, per partition key."""

    inserted: dict[str, int]
    updated: dict[str, int]
    changes: dict[str, ContentDigest]  # hashes written, minus the hashes they replaced
    moved_rows: int  # updated rows whose partition columns changed


def merge_upsert(
    cursor: adbc.Cursor, request: WriteRequest, stream: ChunkStream, bounds: list, native: bool
) -> MergeOutcome:
    """Stage and merge; return what changed in each partition."""
    table_slice = request.table_slice
    staging = f"staging_{uuid.uuid4().hex[:12]}"
    cursor.execute(
        ddl.create_staging_like(table_slice.schema, table_slice.table, staging, temporary=True)
    )
    copy_stream(cursor, stream, staging, schema=None)
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
