"""Export dead letters to Parquet, for analysis or hand-off (the reference's ``save_failures``).

The letters stream from the database's COPY into the Parquet writer a batch at a time, so memory
stays flat whatever the queue's size. The file is written under a temporary name beside its
destination and renamed over it only once complete: a consumer, or an export killed halfway,
only ever finds the previous file or the new one under the final name. A killed export's
temporary file is removed by the next export to the same place.
"""

import os
from pathlib import Path

import pyarrow.parquet as pq
from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import DEAD_LETTERS, PLATFORM_SCHEMA
from platform_assets.lib.process_files import owner_tag, remove_abandoned
from platform_assets.lib.tables.statements import SettingParams
from platform_assets.lib.warehouse.resource import Warehouse


def partial_path(path: Path) -> Path:
    """Where this process writes ``path`` until it is complete: hidden, in the same directory
    (so the final rename is atomic), named after its writer so a dead writer's file is known."""
    return path.with_name(f".{path.name}.{owner_tag()}partial")


def remove_abandoned_partials(path: Path) -> list[Path]:
    """Delete the temporary files of exports to ``path`` whose writer process is gone."""
    prefix = f".{path.name}."
    return remove_abandoned(path.parent.glob(f"{prefix}*partial"), prefix)


def export_dead_letters(
    warehouse: Warehouse,
    path: Path,
    asset_key: str | None = None,
    partition_key: str | None = None,
    status: str | None = None,
) -> int:
    """Write the matching dead letters (payload and detail as JSON text) to ``path``, atomically;
    return how many were written."""
    params = SettingParams()
    filters = [
        sql.SQL("{} = {}").format(sql.Identifier(column), params.add(value, "text"))
        for column, value in (
            ("asset_key", asset_key),
            ("partition_key", partition_key),
            ("status", status),
        )
        if value is not None
    ] or [sql.SQL("TRUE")]
    query = sql.SQL(
        "SELECT id, asset_key, partition_key, run_id, stage, source_ref, payload::text AS payload,"
        " error_class, error_message, error_detail::text AS error_detail, record_hash,"
        " code_version, attempt_count, status, resolved_run_id, created_at, updated_at"
        " FROM {} WHERE {} ORDER BY id"
    ).format(sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS), sql.SQL(" AND ").join(filters))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_partials(path)
    partial = partial_path(path)
    rows = 0
    try:
        with warehouse.bulk_connection() as conn, conn.cursor() as cursor:
            if params.values:
                setup, values = params.setup()
                cursor.execute(setup, parameters=values)
                cursor.fetchall()
            cursor.execute(query.as_string())  # no bind parameters: streamed as a binary COPY
            batches = cursor.fetch_record_batch()
            with pq.ParquetWriter(partial, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        with partial.open("rb+") as written:
            os.fsync(written.fileno())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return rows
