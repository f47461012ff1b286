"""Running migration SQL safely: DDL under lock_timeout with retries, resumable backfills.

Only a lock timeout is retried (with exponential backoff and jitter): it is the one failure that a
later attempt can fix without anyone changing anything. Every other error surfaces at once.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from platform_assets.lib.migrations.ledger import record_ddl_done, record_progress
from platform_assets.lib.migrations.model import BatchedUpdate

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


def run_ddl(
    conn: psycopg.Connection,
    statements: list[str],
    timeouts: Timeouts,
    progress: DdlProgress | None = None,
) -> None:
    """Run each statement in its own transaction under ``lock_timeout``, retrying lock timeouts.

    With ``progress``, a statement already done is skipped and each statement is recorded done
    in the same transaction: a run killed anywhere resumes after the last committed statement,
    never running one twice (a second ``ADD CONSTRAINT`` would fail) nor skipping one.
    """

    @retry(
        retry=retry_if_exception_type(psycopg.errors.LockNotAvailable),
        wait=wait_random_exponential(multiplier=0.2, max=10),
        stop=stop_after_attempt(timeouts.attempts),
        reraise=True,
    )
    def attempt(statement: str, marker: str | None) -> None:
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
    last_key: int = SMALLEST_KEY
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
    after: int,
    timeouts: Timeouts,
) -> list[int]:
    """One batch in its own transaction, the ledger's high-water mark moved in the same commit."""
    with conn.transaction():
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            (f"{timeouts.statement_timeout_ms}ms",),
        )
        keys = [
            key
            for (key,) in conn.execute(
                backfill.statement, {"after": after, "limit": backfill.batch_size}
            ).fetchall()
        ]
        if keys:
            record_progress(conn, migration_id, max(keys), len(keys))
    return keys


def _pass(
    conn: psycopg.Connection,
    migration_id: str,
    backfill: BatchedUpdate,
    progress: BackfillProgress,
    after: int,
    on_batch: Callable[[BackfillProgress, float], None],
    timeouts: Timeouts,
) -> None:
    """Batches in key order from ``after`` until one finds nothing left to do."""
    while True:
        started = time.perf_counter()
        keys = _batch(conn, migration_id, backfill, after, timeouts)
        if not keys:
            return
        elapsed = time.perf_counter() - started
        after = max(keys)
        progress.batches += 1
        progress.rows += len(keys)
        progress.last_key = after
        progress.batch_seconds.append(elapsed)
        on_batch(progress, elapsed)
        time.sleep(backfill.pause_s)


def run_backfill(
    conn: psycopg.Connection,
    migration_id: str,
    backfill: BatchedUpdate,
    start_after: int | None,
    on_batch: Callable[[BackfillProgress, float], None],
    timeouts: Timeouts,
    max_sweeps: int = 100,
) -> BackfillProgress:
    """Keyset batches from ``start_after`` (the ledger's last committed key), a commit each.

    A crash loses at most the batch in flight, which was never committed; a re-run continues after
    the last committed key. Sweeps from the smallest key then pick up rows that were skipped because
    an application held them locked, until none remain.
    """
    progress = BackfillProgress()
    after = SMALLEST_KEY if start_after is None else start_after
    _pass(conn, migration_id, backfill, progress, after, on_batch, timeouts)
    for _ in range(max_sweeps):
        (remaining,) = conn.execute(backfill.remaining).fetchone()
        conn.commit()
        if remaining == 0:
            return progress
        time.sleep(backfill.pause_s * 4)
        _pass(conn, migration_id, backfill, progress, SMALLEST_KEY, on_batch, timeouts)
    raise TimeoutError(f"rows were still locked by other sessions after {max_sweeps} sweeps")
