"""The migration ledger: what was applied, from which source, by whom, how it went, how far it got.

Refuses what Flyway and sqitch refuse: an applied migration whose source changed, a database that
knows migrations the code does not (the ledger is ahead), and out-of-order application unless asked.
"""

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from platform_assets.lib.migrations.model import PLANNED_PREFIX, Migration
from platform_assets.lib.tables.platform_tables import add_column_when_missing

LEDGER_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.migration_ledger (
        migration_id text PRIMARY KEY,
        description text NOT NULL,
        source_sha256 text NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'applied', 'rolled_back', 'failed')),
        applied_by text NOT NULL,
        run_id text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        duration_s double precision,
        baseline jsonb,
        backfill_batches integer NOT NULL DEFAULT 0,
        backfill_rows bigint NOT NULL DEFAULT 0,
        message text
    )
    """,
    # The DDL statements done so far (``step:index``), each recorded in its own transaction.
    add_column_when_missing("migration_ledger", "ddl_done", "jsonb NOT NULL DEFAULT '[]'"),
    # Its chain (lib/migrations/chains.py; "spec" for one planned from a spec); NULL for the
    # entries written before chains were recorded.
    add_column_when_missing("migration_ledger", "chain", "text"),
    # Where a backfill stands (lib/migrations/batches.py): the last key reached, of any number of
    # columns, or the next page of a table without a key. (Ledgers before it also have an unused
    # backfill_last_key bigint: a backfill running across the upgrade restarts its pass, and
    # skips the rows already done.)
    add_column_when_missing("migration_ledger", "backfill_position", "jsonb"),
]
APPLIED = "applied"
RUNNING = "running"


class MigrationRefused(Exception):
    """The run must not proceed; nothing was changed."""


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger."""

    migration_id: str
    source_sha256: str
    status: str
    started_at: datetime
    baseline: dict | None
    backfill_position: dict | None
    backfill_batches: int
    backfill_rows: int
    ddl_done: list[str]


def ensure_ledger(conn: psycopg.Connection) -> None:
    """Create the ledger table if it does not exist."""
    for statement in LEDGER_DDL:
        conn.execute(statement)


def ledger_entries(conn: psycopg.Connection) -> dict[str, LedgerEntry]:
    """Every ledger entry by migration id."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "SELECT migration_id, source_sha256, status, started_at, baseline,"
            " backfill_position, backfill_batches, backfill_rows, ddl_done"
            " FROM platform.migration_ledger"
        ).fetchall()
    return {row["migration_id"]: LedgerEntry(**row) for row in rows}


def next_migration(
    code: list[Migration],
    entries: dict[str, LedgerEntry],
    allow_out_of_order: bool,
    known_ids: Collection[str] = (),
) -> Migration | None:
    """The first migration of ``code`` still to apply (or to resume), after refusing what must be
    refused. ``known_ids``: migrations the code has but does not apply here (a chain whose
    datasets are not declared), which the ledger may hold without being ahead of the code."""
    known = {m.id for m in code} | set(known_ids)
    # A migration planned from a spec is no longer planned once applied: not "ahead" of the code.
    ahead = sorted(e for e in set(entries) - known if not e.startswith(PLANNED_PREFIX))
    if ahead:
        raise MigrationRefused(
            f"the database has applied migrations this code does not know: {ahead}; "
            "deploy the code that contains them first"
        )
    for migration in code:
        entry = entries.get(migration.id)
        changed = entry is not None and entry.source_sha256 != migration.source_sha256
        if changed and entry.status in (APPLIED, RUNNING):
            raise MigrationRefused(
                f"migration {migration.id} was {entry.status} from a different source "
                f"(sha256 {entry.source_sha256[:12]}…, now {migration.source_sha256[:12]}…); "
                "an applied migration must never change: write a new one"
            )
    pending = [m for m in code if entries.get(m.id) is None or entries[m.id].status != APPLIED]
    if not pending:
        return None
    first = pending[0]
    applied_after = [
        m.id
        for m in code
        if m.chain == first.chain
        and m.id > first.id
        and m.id in entries
        and entries[m.id].status == APPLIED
    ]
    if applied_after and not allow_out_of_order:
        raise MigrationRefused(
            f"migration {first.id} would apply out of order (already applied: {applied_after}); "
            "set allow_out_of_order to do it anyway"
        )
    return first


def record_ddl_done(conn: psycopg.Connection, migration_id: str, marker: str) -> None:
    """Record that the DDL statement ``marker`` (``step:index``) is done; called inside the
    statement's own transaction, so the statement and its record commit or vanish together."""
    conn.execute(
        "UPDATE platform.migration_ledger SET ddl_done = ddl_done || to_jsonb(%s::text)"
        " WHERE migration_id = %s",
        (marker, migration_id),
    )


def record_start(
    conn: psycopg.Connection, migration: Migration, run_id: str, applied_by: str, baseline: dict
) -> LedgerEntry | None:
    """Mark ``migration`` running; keep the first baseline and progress when resuming."""
    conn.execute(
        """
        INSERT INTO platform.migration_ledger
            (migration_id, description, source_sha256, status, applied_by, run_id, baseline,
             chain)
        VALUES (%s, %s, %s, 'running', %s, %s, %s, %s)
        ON CONFLICT (migration_id) DO UPDATE SET
            status = 'running', chain = excluded.chain, run_id = excluded.run_id,
            applied_by = excluded.applied_by,
            source_sha256 = excluded.source_sha256, finished_at = NULL, message = NULL,
            baseline = CASE WHEN platform.migration_ledger.status = 'running'
                            THEN platform.migration_ledger.baseline ELSE excluded.baseline END,
            backfill_position = CASE WHEN platform.migration_ledger.status = 'running'
                            THEN platform.migration_ledger.backfill_position END,
            backfill_batches = CASE WHEN platform.migration_ledger.status = 'running'
                            THEN platform.migration_ledger.backfill_batches ELSE 0 END,
            backfill_rows = CASE WHEN platform.migration_ledger.status = 'running'
                            THEN platform.migration_ledger.backfill_rows ELSE 0 END,
            ddl_done = CASE WHEN platform.migration_ledger.status = 'running'
                            THEN platform.migration_ledger.ddl_done ELSE '[]' END
        """,
        (
            migration.id,
            migration.description,
            migration.source_sha256,
            applied_by,
            run_id,
            json.dumps(baseline),
            migration.chain,
        ),
    )
    return ledger_entries(conn).get(migration.id)


def record_progress(
    conn: psycopg.Connection, migration_id: str, position: dict, batch_rows: int
) -> None:
    """Advance the backfill's position, in the same transaction as the batch itself."""
    conn.execute(
        "UPDATE platform.migration_ledger SET backfill_position = %s,"
        " backfill_batches = backfill_batches + (%s > 0)::int,"
        " backfill_rows = backfill_rows + %s WHERE migration_id = %s",
        (Jsonb(position), batch_rows, batch_rows, migration_id),
    )


def record_outcome(conn: psycopg.Connection, migration_id: str, status: str, message: str) -> None:
    """Close the entry with its outcome and duration."""
    conn.execute(
        "UPDATE platform.migration_ledger SET status = %s, message = %s, finished_at = now(),"
        " duration_s = extract(epoch FROM now() - started_at) WHERE migration_id = %s",
        (status, message, migration_id),
    )
