"""Discarding dead letters: an audited decision that some rejected rows will never be loaded.

All the letters named are discarded in one transaction, or none: each must be an unresolved
letter of the dataset (or one this same run discarded already: a retried step repeats nothing).
Every discard is recorded with who decided it and why (``platform.dead_letter_discards``), the
letter keeps its payload and becomes ``discarded``, and its partition's accounting moves it from
dead-lettered to discarded, so rows read = loaded + dead-lettered + discarded still holds and
``rows_add_up`` stays true.
"""

from collections import Counter
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import (
    ACCOUNTING,
    DEAD_LETTERS,
    PLATFORM_SCHEMA,
    UNRESOLVED,
)
from platform_assets.lib.tables import statements
from platform_assets.lib.tables.platform_tables import create_platform_table
from platform_assets.lib.warehouse.transactions import transaction

DISCARDS = "dead_letter_discards"
DISCARD_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.dead_letter_discards (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        dead_letter_id bigint NOT NULL,
        asset_key text NOT NULL,
        partition_key text NOT NULL,
        note text NOT NULL,
        author text NOT NULL,
        run_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]


class DiscardError(ValueError):
    """A discard that cannot be applied; nothing was discarded."""


@dataclass(frozen=True)
class Discarded:
    """How many letters were discarded, per partition."""

    per_partition: dict[str, int]


def discard_letters(
    conn: adbc.Connection,
    asset_key: str,
    letter_ids: list[int],
    note: str,
    author: str,
    run_id: str,
    lock_keys: list[str],
) -> Discarded:
    """Discard the unresolved letters ``letter_ids`` of ``asset_key`` (see the module docstring).

    ``lock_keys`` are the advisory locks of the partitions touched, taken in a fixed order so a
    concurrent load or replay of the same partitions waits.
    """
    if not letter_ids:
        raise DiscardError("no dead letter named; nothing was discarded")
    with transaction(conn) as cursor:
        create_platform_table(cursor, DISCARDS, DISCARD_DDL)
        for lock_key in lock_keys:
            cursor.execute(statements.ADVISORY_XACT_LOCK, parameters=(lock_key,))
        params = statements.Params()
        update = sql.SQL(
            "UPDATE {} SET status = 'discarded', resolved_run_id = {}, updated_at = now()"
            " WHERE asset_key = {} AND id IN ({}) AND status IN ({}) RETURNING id, partition_key"
        ).format(
            sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
            params.add(run_id),
            params.add(asset_key),
            params.add_all(sorted(set(letter_ids))),
            params.add_all(UNRESOLVED),
        )
        cursor.execute(update.as_string(), parameters=params.values)
        discarded = cursor.fetchall()
        missing = sorted(set(letter_ids) - {int(letter_id) for letter_id, _ in discarded})
        earlier = _discarded_by(cursor, asset_key, missing, run_id) if missing else []
        missing = sorted(set(missing) - {int(letter_id) for letter_id, _ in earlier})
        if missing:
            raise DiscardError(
                f"dead letter(s) {missing} are not unresolved dead letters of {asset_key};"
                " nothing was discarded"
            )
        per_partition = record_discards(cursor, asset_key, discarded, note, author, run_id)
    per_partition.update(partition_key for _, partition_key in earlier)
    return Discarded(dict(per_partition))


def _discarded_by(
    cursor: adbc.Cursor, asset_key: str, letter_ids: list[int], run_id: str
) -> list[tuple[int, str]]:
    """Those of ``letter_ids`` this run has already discarded (a retried step): done, not
    refused, and not recorded twice."""
    params = statements.Params()
    query = sql.SQL(
        "SELECT id, partition_key FROM {} WHERE asset_key = {} AND id IN ({})"
        " AND status = 'discarded' AND resolved_run_id = {}"
    ).format(
        sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
        params.add(asset_key),
        params.add_all(letter_ids),
        params.add(run_id),
    )
    cursor.execute(query.as_string(), parameters=params.values)
    return cursor.fetchall()


def record_discards(
    cursor: adbc.Cursor,
    asset_key: str,
    discarded: list[tuple[int, str]],
    note: str,
    author: str,
    run_id: str,
) -> Counter[str]:
    """Record who discarded the letters ``discarded`` (``(id, partition key)``, already marked
    ``discarded``) and why, and move them from dead-lettered to discarded in their partitions'
    accounting; how many per partition."""
    for letter_id, partition_key in discarded:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (dead_letter_id, asset_key, partition_key, note, author,"
                " run_id) VALUES ($1, $2, $3, $4, $5, $6)"
            )
            .format(sql.Identifier(PLATFORM_SCHEMA, DISCARDS))
            .as_string(),
            parameters=(int(letter_id), asset_key, partition_key, note, author, run_id),
        )
    per_partition = Counter(partition_key for _, partition_key in discarded)
    for partition_key, count in sorted(per_partition.items()):
        cursor.execute(
            sql.SQL(
                "UPDATE {} SET rows_dead_lettered = rows_dead_lettered - $1,"
                " rows_discarded = rows_discarded + $1, written_at = now()"
                " WHERE asset_key = $2 AND partition_key = $3"
            )
            .format(sql.Identifier(PLATFORM_SCHEMA, ACCOUNTING))
            .as_string(),
            parameters=(count, asset_key, partition_key),
        )
    return per_partition


def partitions_of_letters(
    conn: adbc.Connection, asset_key: str, letter_ids: list[int]
) -> list[str]:
    """The partitions the letters ``letter_ids`` of ``asset_key`` belong to, sorted."""
    cursor = conn.cursor()
    try:
        params = statements.Params()
        query = sql.SQL(
            "SELECT DISTINCT partition_key FROM {} WHERE asset_key = {} AND id IN ({}) ORDER BY 1"
        ).format(
            sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
            params.add(asset_key),
            params.add_all(letter_ids),
        )
        cursor.execute(query.as_string(), parameters=params.values)
        return [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()
        conn.rollback()
