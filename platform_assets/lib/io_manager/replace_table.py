"""``replace_table``: load a new table, swap it in, rebuild the old one's indexes on it."""

import uuid

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.io_manager.chunk_stream import ChunkStream, copy_stream
from platform_assets.lib.io_manager.write_request import WriteRequest
from platform_assets.lib.tables import bulk_load, ddl, statements


def swap_in_new_table(cursor: adbc.Cursor, request: WriteRequest, stream: ChunkStream) -> int:
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
        ddl.create_staging_like(
            schema, table, staging, temporary=False, with_indexes=indexes is None
        )
    )
    copy_stream(cursor, stream, staging, schema)
    for statement in ddl.swap_tables(schema, table, staging, retired):
        cursor.execute(statement)
    for index in indexes or ():
        cursor.execute(index.rebuild(schema, table))
    return replaced
