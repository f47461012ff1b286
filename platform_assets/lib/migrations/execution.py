"""Running migration SQL safely: DDL under lock_timeout with retries, resumable backfills.

Only a lock timeout is retried (with exponential backoff and jitter): it is the one failure that a
later attempt can fix without anyone changing anything. Every other error surfaces at once.
"""

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from platform_assets.lib.migrations.ledger import record_ddl_done, record_progress
from platform_assets.lib.migrations.model import REPORTS_POSITION, BatchedUpdate

# Where a backfill stands (``batches.py``): the last key reached, or the next page; None to start.
Position = dict | None
# A hand-written backfill's position: the last integer key it updated (before the first, the least).
LAST_KEY = "last_key"
SMALLEST_KEY = -(2**63)


@dataclass(frozen=True)
class Timeouts:
    """Per-statement limits for migration DDL (pgroll uses 500 ms for lock_timeout)."""

    lock_timeout_ms: int = 500
    statement_timeout_ms: int = 15 * 60 * 1000
    attempts: int = 8


@dataclass(frozen=True)
class DdlProgress:
    """Where a migration's DDL of one step stands: statements already done (``step:index``
    markers from the ledger) are skipped, and each one run is recorded in its transaction."""

    migration_id: str
    step: str
    done: frozenset[str] = frozenset()

    def marker(self, index: int) -> str:
        """The ledger's marker for statement ``index`` of this step."""
        return f"{self.step}:{index}"


# PostgreSQL refuses these inside a transaction block: they run on their own, and their ledger
# record follows in a transaction of its own. Each is written to be safe to repeat (IF NOT EXISTS),
# since a run killed between the two repeats it.
OUTSIDE_A_TRANSACTION = re.compile(r"\bCONCURRENTLY\b", re.I)


def _outside_a_transaction(conn: psycopg.Connection, statement: str, timeouts: Timeouts) -> None:
    """Run ``statement`` in autocommit under the same timeouts, set for the session meanwhile."""
    limits = ("lock_timeout", "statement_timeout")
    conn.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (f"{timeouts.lock_timeout_ms}ms", f"{timeouts.statement_timeout_ms}ms"),
    )
    try:
        conn.execute(statement)
    finally:
        for limit in limits:
            conn.execute(sql.SQL("RESET {}").format(sql.Identifier(limit)))


def run_ddl(
    conn: psycopg.Connection,
    statements: list[str],
    timeouts: Timeouts,
    progress: DdlProgress | None = None,
) -> None:
    """Run each statement in its own transaction under ``lock_timeout``, retrying lock timeouts.

    With ``progress``, a statement already done is skipped and each statement is recorded done
    in the same transaction: a run killed anywhere resumes after the last committed statement,
    never running one twice (a second ``ADD CONSTRAINT`` would fail) nor skipping one. A statement
    PostgreSQL runs only outside a transaction (``CONCURRENTLY``) is recorded right after it.
    """

    @retry(
        retry=retry_if_exception_type(psycopg.errors.LockNotAvailable),
        wait=wait_random_exponential(multiplier=0.2, max=10),
        stop=stop_after_attempt(timeouts.attempts),
        reraise=True,
    )
    def attempt(statement: str, marker: str | None) -> None:
        if OUTSIDE_A_TRANSACTION.search(statement):
            _outside_a_transaction(conn, statement, timeouts)
            if marker is not None:
                with conn.transaction():
                    record_ddl_done(conn, progress.migration_id, marker)  # type: ignore[union-attr]
            return
        with conn.transaction():
            conn.execute(
                "SELECT set_config('lock_timeout', %s, true),"
                " set_config('statement_timeout', %s, true)",
                (f"{timeouts.lock_timeout_ms}ms", f"{timeouts.statement_timeout_ms}ms"),
            )
            conn.execute(statement)
            if marker is not None:
                record_ddl_done(conn, progress.migration_id, marker)  # type: ignore[union-attr]

    for index, statement in enumerate(statements):
        marker = None if progress is None else progress.marker(index)
        if progress is not None and marker in progress.done:
            continue
        attempt(statement, marker)


@dataclass
class BackfillProgress:
    """What one backfill run did."""

    batches: int = 0
    rows: int = 0
    position: Position = None
    # Passes from the start after the first, for rows that were locked by others (or, were there
    # a fault in the batch statement's order, rows it passed over).
    sweeps: int = 0
    batch_seconds: list[float] = field(default_factory=list)

    @property
    def median_batch_s(self) -> float:
        """The median time a batch held its rows locked."""
        return statistics.median(self.batch_seconds) if self.batch_seconds else 0.0

    @property
    def longest_batch_s(self) -> float:
        """The longest time a batch held its rows locked."""
        return max(self.batch_seconds, default=0.0)


def _batch(
    conn: psycopg.Connection,
    migration_id: str,
    backfill: BatchedUpdate,
    after: Position,
    timeouts: Timeouts,
) -> tuple[int, Position]:
    """One batch in its own transaction, the ledger's position moved in the same commit: the rows
    it updated and the position to continue after (None at the end of the pass)."""
    with conn.transaction():
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            (f"{timeouts.statement_timeout_ms}ms",),
        )
        if backfill.reports == REPORTS_POSITION:
            # Never a prepared statement: planned with the position as a constant each time, the
            # start's "no position" folds away and the key's index serves the row comparison.
            rows, position = conn.execute(
                backfill.statement,
                {"after": None if after is None else Jsonb(after), "limit": backfill.batch_size},
                prepare=False,
            ).fetchone()
        else:
            last_key = SMALLEST_KEY if after is None else after[LAST_KEY]
            updated = conn.execute(
                backfill.statement, {"after": last_key, "limit": backfill.batch_size}
            ).fetchall()
            rows = len(updated)
            position = {LAST_KEY: max(key for (key,) in updated)} if updated else None
        if position is not None:
            record_progress(conn, migration_id, position, rows)
    return rows, position


def _pass(
    conn: psycopg.Connection,
    migration_id: str,
    backfill: BatchedUpdate,
    progress: BackfillProgress,
    after: Position,
    on_batch: Callable[[BackfillProgress, float], None],
    timeouts: Timeouts,
) -> None:
    """Batches in order from ``after`` until the end of the table."""
    while True:
        started = time.perf_counter()
        rows, after = _batch(conn, migration_id, backfill, after, timeouts)
        if after is None:
            return
        elapsed = time.perf_counter() - started
        progress.position = after
        if rows:
            progress.batches += 1
            progress.rows += rows
            progress.batch_seconds.append(elapsed)
            on_batch(progress, elapsed)
            time.sleep(backfill.pause_s)


def run_backfill(
    conn: psycopg.Connection,
    migration_id: str,
    backfill: BatchedUpdate,
    start_after: Position,
    on_batch: Callable[[BackfillProgress, float], None],
    timeouts: Timeouts,
    max_sweeps: int = 100,
) -> BackfillProgress:
    """Batches from ``start_after`` (the ledger's last committed position), a commit each.

    A crash loses at most the batch in flight, which was never committed; a re-run continues after
    the last committed position. Sweeps from the start then pick up rows that were skipped because
    an application held them locked, until none remain.
    """
    progress = BackfillProgress()
    _pass(conn, migration_id, backfill, progress, start_after, on_batch, timeouts)
    for _ in range(max_sweeps):
        (remaining,) = conn.execute(backfill.remaining).fetchone()
        conn.commit()
        if remaining == 0:
            return progress
        time.sleep(backfill.pause_s * 4)
        progress.sweeps += 1
        _pass(conn, migration_id, backfill, progress, None, on_batch, timeouts)
    raise TimeoutError(f"rows were still locked by other sessions after {max_sweeps} sweeps")
