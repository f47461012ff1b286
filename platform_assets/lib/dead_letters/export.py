"""Export dead letters to Parquet, for analysis or hand-off (the reference's ``save_failures``)."""

from pathlib import Path

import pyarrow.parquet as pq
from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import DEAD_LETTERS, PLATFORM_SCHEMA
from platform_assets.lib.tables.statements import Params
from platform_assets.lib.warehouse.resource import Warehouse


def export_dead_letters(
    warehouse: Warehouse,
    path: Path,
    asset_key: str | None = None,
    partition_key: str | None = None,
    status: str | None = None,
) -> int:
    """Write the matching dead letters (payload and detail as JSON text) to ``path``; return how
    many were written."""
    params = Params()
    filters = [
        sql.SQL("{} = {}").format(sql.Identifier(column), params.add(value))
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
    with warehouse.bulk_connection() as conn, conn.cursor() as cursor:
        cursor.execute(query.as_string(), parameters=params.values or None)
        table = cursor.fetch_arrow_table()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table.num_rows
