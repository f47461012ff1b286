"""The dead-letter queue's replay side: audited patches, locking, loading, resolving.

A partition's replay is one transaction: its queued dead letters are locked, the rows that now
pass are inserted into the dataset's table (a key already there is refused, never overwritten),
each record is marked resolved (with the run id) or kept with its new error and one more attempt,
and the partition's accounting moves the loaded rows from dead-lettered to loaded. Writers of the
same partition (a re-run of the asset) wait on the same advisory lock as the IO manager takes.
"""

import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import (
    ACCOUNTING,
    DEAD_LETTERS,
    PLATFORM_SCHEMA,
    UNRESOLVED,
)
from platform_assets.lib.ingestion.replay import QueuedRecord, Revalidated
from platform_assets.lib.jsonb import JSONB_METADATA, jsonb_bytes
from platform_assets.lib.row_hash import ROW_HASH_COLUMN, row_hashes
from platform_assets.lib.tables import content_digests, ddl, statements
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.platform_tables import create_platform_table
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice
from platform_assets.lib.warehouse.transactions import transaction

PATCHES = "dead_letter_patches"
PATCH_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.dead_letter_patches (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        dead_letter_id bigint NOT NULL,
        payload jsonb NOT NULL,
        note text NOT NULL,
        author text NOT NULL,
        run_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX IF NOT EXISTS dead_letter_patches_letter_idx"
    " ON platform.dead_letter_patches (dead_letter_id, id)",
]
_DLQ = sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS)
_OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("resolved", pa.bool_()),
        pa.field("stage", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("error_detail", pa.binary(), metadata=JSONB_METADATA),
    ]
)


class ReplayError(ValueError):
    """A replay request that cannot be applied (an unknown or already resolved dead letter)."""


@dataclass(frozen=True)
class Patch:
    """A corrected payload for one dead letter, with who made it and why (kept for audit)."""

    dead_letter_id: int
    payload: dict[str, Any]
    note: str
    author: str


@dataclass(frozen=True)
class ReplayOutcome:
    """What one partition's replay did."""

    partition_key: str
    replayed: int
    resolved: int
    still_failing: int


def record_patches(
    conn: adbc.Connection, asset_key: str, patches: list[Patch], run_id: str
) -> None:
    """Store ``patches`` (audit trail) and mark their dead letters ``replaying``; commit.

    Committed before the replay itself, so a patch survives a replay that fails. Creates the
    patch table on first use, so call it (with no patches) before any replay. A patch this run
    already recorded (a retried step) is not recorded again.
    """
    with transaction(conn) as cursor:
        create_platform_table(cursor, PATCHES, PATCH_DDL)
        for patch in patches:
            cursor.execute(
                sql.SQL("SELECT 1 FROM {} WHERE dead_letter_id = $1 AND run_id = $2")
                .format(sql.Identifier(PLATFORM_SCHEMA, PATCHES))
                .as_string(),
                parameters=(patch.dead_letter_id, run_id),
            )
            if cursor.fetchone() is not None:
                continue
            params = statements.Params()
            query = sql.SQL(
                "UPDATE {} SET status = 'replaying', updated_at = now()"
                " WHERE id = {} AND asset_key = {} AND status IN ({}) RETURNING id"
            ).format(
                _DLQ,
                params.add(patch.dead_letter_id),
                params.add(asset_key),
                params.add_all(list(UNRESOLVED)),
            )
            cursor.execute(query.as_string(), parameters=params.values)
            if cursor.fetchone() is None:
                raise ReplayError(
                    f"dead letter {patch.dead_letter_id} is not an unresolved dead letter of"
                    f" {asset_key}; nothing was patched"
                )
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (dead_letter_id, payload, note, author, run_id)"
                    " VALUES ($1, $2::jsonb, $3, $4, $5)"
                )
                .format(sql.Identifier(PLATFORM_SCHEMA, PATCHES))
                .as_string(),
                parameters=(
                    patch.dead_letter_id,
                    json.dumps(patch.payload),
                    patch.note,
                    patch.author,
                    run_id,
                ),
            )


def queued_partitions(
    conn: adbc.Connection,
    asset_key: str,
    partition_keys: list[str],
    statuses: list[str],
    ids: Sequence[int] = (),
) -> list[str]:
    """Partitions of ``asset_key`` holding dead letters in ``statuses`` (all, or those listed;
    only the letters ``ids`` when given)."""
    params = statements.Params()
    filters = [
        sql.SQL("asset_key = {}").format(params.add(asset_key)),
        sql.SQL("status IN ({})").format(params.add_all(statuses)),
    ]
    if partition_keys:
        filters.append(sql.SQL("partition_key IN ({})").format(params.add_all(partition_keys)))
    if ids:
        filters.append(sql.SQL("id IN ({})").format(params.add_all(list(ids))))
    query = sql.SQL("SELECT DISTINCT partition_key FROM {} WHERE {} ORDER BY 1").format(
        _DLQ, sql.SQL(" AND ").join(filters)
    )
    cursor = conn.cursor()
    try:
        cursor.execute(query.as_string(), parameters=params.values)
        return [key for (key,) in cursor.fetchall()]
    finally:
        cursor.close()
        conn.rollback()


def lock_queued(
    cursor: adbc.Cursor,
    asset_key: str,
    partition_key: str,
    statuses: list[str],
    ids: Sequence[int] = (),
) -> list[QueuedRecord]:
    """Lock the partition's queued dead letters (only ``ids`` when given) and return them as
    patched: the stored payload, each field a patch names replaced by its latest patch's value
    (a patch names only the fields it changes)."""
    params = statements.Params()
    chosen = sql.SQL(" AND d.id IN ({})").format(params.add_all(list(ids))) if ids else sql.SQL("")
    query = sql.SQL(
        "SELECT d.id, (d.payload || coalesce(p.fields, '{{}}'::jsonb))::text FROM {dlq} d"
        " LEFT JOIN LATERAL (SELECT jsonb_object_agg(f.key, f.value ORDER BY patch.id) AS fields"
        " FROM {patches} AS patch, jsonb_each(patch.payload) AS f"
        " WHERE patch.dead_letter_id = d.id) p ON true"
        " WHERE d.asset_key = {asset} AND d.partition_key = {key} AND d.status IN ({statuses})"
        "{chosen} ORDER BY d.id FOR UPDATE OF d"
    ).format(
        dlq=_DLQ,
        patches=sql.Identifier(PLATFORM_SCHEMA, PATCHES),
        asset=params.add(asset_key),
        key=params.add(partition_key),
        statuses=params.add_all(statuses),
        chosen=chosen,
    )
    cursor.execute(query.as_string(), parameters=params.values)
    return [QueuedRecord(int(i), json.loads(payload)) for i, payload in cursor.fetchall()]


@dataclass(frozen=True)
class ReplayKey:
    """How replayed rows are kept from repeating stored ones: by the table's ``primary_key``
    (a constraint: ``ON CONFLICT DO NOTHING``), by a ``dedupe_key`` looked up in the table, or
    not at all (a keyless dataset keeps every row). With ``newer_by`` (an incremental extract's
    ``updated_at`` column), a replayed row replaces the stored row of its primary key when it is
    a newer version of it."""

    primary_key: list[str]
    dedupe_key: list[str]
    newer_by: str | None = None

    @property
    def clash_message(self) -> str:
        kind, columns = (
            ("primary key", self.primary_key)
            if self.primary_key
            else ("dedupe key", self.dedupe_key)
        )
        if self.newer_by:
            return f"{kind} {columns} is already loaded at a version as new or newer in"
        return f"{kind} {columns} is already loaded in"


def _insert_new_rows(
    cursor: adbc.Cursor, table_slice: TableSlice, rows: pa.Table, key: ReplayKey
) -> list[bool]:
    """Insert ``rows``, skipping a row whose key the table (or an earlier row of ``rows``)
    already holds. Returns, per row, whether it was inserted (told apart by content: the
    statement returns the row hashes it inserted)."""
    staging = f"replay_{uuid.uuid4().hex[:12]}"
    hashes = row_hashes(rows, rows.column_names)
    hashed = rows.append_column(pa.field(ROW_HASH_COLUMN, pa.binary(16)), hashes)
    cursor.execute(
        ddl.create_staging_like(table_slice.schema, table_slice.table, staging, temporary=True)
    )
    cursor.adbc_ingest(staging, hashed, mode="append", temporary=True)
    target = sql.Identifier(table_slice.schema, table_slice.table)
    columns = sql.SQL(", ").join(map(sql.Identifier, hashed.column_names))
    from_staging = sql.SQL(", ").join(
        sql.SQL("s.{}").format(sql.Identifier(c)) for c in hashed.column_names
    )
    selected = sql.SQL("SELECT {} FROM {} s").format(from_staging, sql.Identifier(staging))
    if key.primary_key and key.newer_by:
        selected = sql.SQL(
            "{selected} ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE r.{at} < excluded.{at}"
        ).format(
            selected=selected,
            key=statements.names(key.primary_key),
            sets=sql.SQL(", ").join(
                sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                for c in hashed.column_names
                if c not in key.primary_key
            ),
            at=sql.Identifier(key.newer_by),
        )
    elif key.primary_key:
        selected = sql.SQL("{} ON CONFLICT DO NOTHING").format(selected)
    elif key.dedupe_key:
        selected = sql.SQL(
            "SELECT DISTINCT ON ({dedupe}) {cols} FROM {staging} s"
            " WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {held})"
        ).format(
            dedupe=sql.SQL(", ").join(
                sql.SQL("s.{}").format(sql.Identifier(c)) for c in key.dedupe_key
            ),
            cols=from_staging,
            staging=sql.Identifier(staging),
            target=target,
            held=sql.SQL(" AND ").join(
                sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in key.dedupe_key
            ),
        )
    cursor.execute(
        sql.SQL("INSERT INTO {} AS r ({}) {} RETURNING {}")
        .format(target, columns, selected, sql.Identifier(ROW_HASH_COLUMN))
        .as_string()
    )
    inserted = Counter(cursor.fetch_arrow_table().column(0).to_pylist())
    kept = []
    for digest in hashes.to_pylist():
        kept.append(inserted[digest] > 0)
        inserted[digest] -= 1
    return kept


def _apply_outcomes(cursor: adbc.Cursor, outcomes: pa.Table, run_id: str) -> None:
    staging = f"replay_outcome_{uuid.uuid4().hex[:12]}"
    cursor.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} (id bigint, resolved boolean, stage text,"
            " error_message text, error_detail jsonb) ON COMMIT DROP"
        )
        .format(sql.Identifier(staging))
        .as_string()
    )
    cursor.adbc_ingest(staging, outcomes, mode="append", temporary=True)
    cursor.execute(
        sql.SQL(
            "UPDATE {dlq} d SET"
            " status = CASE WHEN o.resolved THEN 'resolved' ELSE 'new' END,"
            " resolved_run_id = CASE WHEN o.resolved THEN $1 END,"
            " attempt_count = d.attempt_count + 1,"
            " stage = coalesce(o.stage, d.stage),"
            " error_message = coalesce(o.error_message, d.error_message),"
            " error_detail = coalesce(o.error_detail, d.error_detail),"
            " updated_at = now()"
            " FROM {outcome} o WHERE d.id = o.id"
        )
        .format(dlq=_DLQ, outcome=sql.Identifier(staging))
        .as_string(),
        parameters=(run_id,),
    )


def _move_to_loaded(
    cursor: adbc.Cursor, asset_key: str, partition_key: str, count: int, run_id: str
) -> None:
    cursor.execute(
        sql.SQL(
            "UPDATE {} SET rows_loaded = rows_loaded + $1,"
            " rows_dead_lettered = rows_dead_lettered - $1, run_id = $2, written_at = now()"
            " WHERE asset_key = $3 AND partition_key = $4"
        )
        .format(sql.Identifier(PLATFORM_SCHEMA, ACCOUNTING))
        .as_string(),
        parameters=(count, run_id, asset_key, partition_key),
    )


def _outcomes(
    result: Revalidated, inserted: list[bool], clash_message: str
) -> tuple[pa.Table, int]:
    """Per replayed dead letter: resolved, or its new stage, message and detail."""
    rows: list[tuple] = []
    for letter_id, kept in zip(result.passing_ids, inserted, strict=True):
        if kept:
            rows.append((letter_id, True, None, None, None))
        else:
            detail = {"failures": [{"check": "unique", "message": clash_message}]}
            rows.append((letter_id, False, "load", clash_message, jsonb_bytes(detail)))
    resolved = sum(inserted)
    for failure in result.failing:
        rows.append(
            (
                failure.id,
                False,
                failure.stage,
                failure.error_message,
                jsonb_bytes(failure.error_detail),
            )
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(_OUTCOME_SCHEMA)
    return pa.table(
        [pa.array(values, f.type) for values, f in zip(columns, _OUTCOME_SCHEMA, strict=True)],
        schema=_OUTCOME_SCHEMA,
    ), resolved


def replay_partition(
    conn: adbc.Connection,
    asset_key: str,
    table_slice: TableSlice,
    key: ReplayKey,
    statuses: list[str],
    revalidate: Callable[[list[QueuedRecord]], Revalidated],
    run_id: str,
    ids: Sequence[int] = (),
) -> ReplayOutcome:
    """Replay the queued dead letters (only ``ids`` when given) of the single partition in
    ``table_slice`` (of the whole table when it names none), atomically."""
    partition = table_slice.partitions[0] if table_slice.partitions else PartitionSlice(WHOLE_TABLE)
    with transaction(conn) as cursor:
        for lock_key in table_slice.lock_keys():
            cursor.execute(statements.ADVISORY_XACT_LOCK, parameters=(lock_key,))
        records = lock_queued(cursor, asset_key, partition.key, statuses, ids)
        result = revalidate(records)
        inserted = (
            _insert_new_rows(cursor, table_slice, result.rows, key) if result.rows.num_rows else []
        )
        clash = f"{key.clash_message} {table_slice.qualified_name}"
        outcomes, resolved = _outcomes(result, inserted, clash)
        if outcomes.num_rows:
            _apply_outcomes(cursor, outcomes, run_id)
        if resolved:
            _move_to_loaded(cursor, asset_key, partition.key, resolved, run_id)
            # The partition gained rows its stored digest does not count: the next write rescans.
            content_digests.prepare(cursor)
            content_digests.forget(
                cursor,
                statements.table_identifier(table_slice.schema, table_slice.table),
                [partition.key],
            )
    return ReplayOutcome(partition.key, len(records), resolved, len(records) - resolved)
