"""Many dead letters at once, made by the database itself: for exercising the queue at scale
(the export's memory, a killed export) without loading millions of bad rows first."""

from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import DEAD_LETTER_DDL, DEAD_LETTERS
from platform_assets.lib.tables.platform_tables import PLATFORM_SCHEMA, create_platform_table
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transactions import transaction


def add_sample_letters(warehouse: Warehouse, asset_key: str, count: int) -> None:
    """``count`` new dead letters of ``asset_key`` on one day, each with a payload of a dozen
    fields, in one ``INSERT … SELECT``."""
    with warehouse.bulk_connection() as conn, transaction(conn) as cursor:
        create_platform_table(cursor, DEAD_LETTERS, DEAD_LETTER_DDL)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (asset_key, partition_key, run_id, stage, source_ref, payload,"
                " error_class, error_message, record_hash)"
                " SELECT $2, '2026-11-01', 'sample', 'validate', 'sample.csv:' || n,"
                " jsonb_object(array_agg('field_' || f), array_agg(md5((n * f)::text))),"
                " 'ValidationError', 'quantity is below 1', md5(n::text)"
                " FROM generate_series(1, $1) n, generate_series(1, 12) f GROUP BY n"
            )
            .format(sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS))
            .as_string(),
            parameters=(count, asset_key),
        )
