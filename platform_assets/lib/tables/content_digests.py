"""Each partition's content digest, stored with its rows: upserts and appends cost O(rows written).

A partition's ``DataVersion`` comes from the ``ContentDigest`` of its rows' ``_row_hash`` values:
two 64-bit lane sums and a row count. Those add up, so rather than scan the whole partition after
every upsert or append, a write adds the hashes it inserted, takes out the hashes it overwrote, and
stores the result in ``platform.content_digests`` in the same transaction as the rows. A replace
stores the digest of what it loaded. A partition with no stored digest (a table written before
digests were kept, or a partition a dead-letter replay added rows to) is scanned once, and its
digest stored from then on.

Only the platform's own writes keep the digests: after changing a table's rows by hand, delete its
digests (``DELETE FROM platform.content_digests WHERE table_name = '"schema"."table"'``) and the
next write scans again.
"""

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.row_hash import ContentDigest
from platform_assets.lib.tables.platform_tables import PLATFORM_SCHEMA, create_platform_table
from platform_assets.lib.tables.statements import Params, execute_values
from platform_assets.lib.tables.table_slice import WHOLE_TABLE  # the key of a whole table's digest

CONTENT_DIGESTS = "content_digests"
CONTENT_DIGESTS_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.content_digests (
        table_name text NOT NULL,
        partition_key text NOT NULL,
        lane_a bigint NOT NULL,
        lane_b bigint NOT NULL,
        row_count bigint NOT NULL CHECK (row_count >= 0),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (table_name, partition_key)
    )
    """,
]
_TABLE = sql.Identifier(PLATFORM_SCHEMA, CONTENT_DIGESTS)


def prepare(cursor: adbc.Cursor) -> None:
    """Create the digest table if needed."""
    create_platform_table(cursor, CONTENT_DIGESTS, CONTENT_DIGESTS_DDL)


def load(cursor: adbc.Cursor, table_name: str, keys: list[str]) -> dict[str, ContentDigest]:
    """The stored digests of partitions ``keys`` of ``table_name`` (its quoted name), if any."""
    params = Params()
    statement = sql.SQL(
        "SELECT partition_key, lane_a, lane_b, row_count FROM {}"
        " WHERE table_name = {} AND partition_key IN ({})"
    ).format(_TABLE, params.add(table_name), params.add_all(keys))
    cursor.execute(statement.as_string(), parameters=params.values)
    return {
        key: ContentDigest.from_parts(lane_a, lane_b, count)
        for key, lane_a, lane_b, count in cursor.fetchall()
    }


def store(cursor: adbc.Cursor, table_name: str, digests: dict[str, ContentDigest]) -> None:
    """Record ``digests`` as the current ones of their partitions.

    A table is either partitioned or not: storing partitions drops a whole-table digest, and a
    whole-table digest drops the partitions', so no stale digest outlives a change of layout.
    """
    whole = WHOLE_TABLE in digests
    params = Params()
    stale = sql.SQL("DELETE FROM {} WHERE table_name = {} AND partition_key {} {}").format(
        _TABLE,
        params.add(table_name),
        sql.SQL("<>" if whole else "="),
        params.add(WHOLE_TABLE),
    )
    cursor.execute(stale.as_string(), parameters=params.values)
    execute_values(
        cursor,
        sql.SQL("INSERT INTO {} (table_name, partition_key, lane_a, lane_b, row_count)").format(
            _TABLE
        ),
        [(table_name, key, *digest.parts) for key, digest in digests.items()],
        sql.SQL(
            "ON CONFLICT (table_name, partition_key) DO UPDATE SET lane_a = excluded.lane_a,"
            " lane_b = excluded.lane_b, row_count = excluded.row_count, updated_at = now()"
        ),
    )


def forget(cursor: adbc.Cursor, table_name: str, keys: list[str]) -> None:
    """Drop the digests of ``keys``: their rows changed in a way the digest did not follow."""
    params = Params()
    statement = sql.SQL("DELETE FROM {} WHERE table_name = {} AND partition_key IN ({})").format(
        _TABLE, params.add(table_name), params.add_all(keys)
    )
    cursor.execute(statement.as_string(), parameters=params.values)


def forget_table(cursor: adbc.Cursor, table_name: str) -> None:
    """Drop every digest of ``table_name``."""
    statement = sql.SQL("DELETE FROM {} WHERE table_name = $1").format(_TABLE)
    cursor.execute(statement.as_string(), parameters=(table_name,))
