"""The guarded migration job: guard → pre-checks → baseline → forward → backfill → constraints →
post-validation → ledger. The default run is a dry run; ``confirm: true`` applies.

Any failure after the forward step runs the migration's ``down``, verifies the table is back to its
baseline (columns, row count, null counts, checksum) and fails the run saying so.
"""

import getpass
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import dagster as dg
from psycopg import sql

from platform_assets.lib.migrations.baseline import (
    back_up_columns,
    capture_baseline,
    differences,
    explain_rows,
    measure,
    row_count,
    table_columns,
)
from platform_assets.lib.migrations.execution import (
    BackfillProgress,
    DdlProgress,
    Timeouts,
    run_backfill,
    run_ddl,
)
from platform_assets.lib.migrations.ledger import (
    APPLIED,
    RUNNING,
    MigrationRefused,
    ensure_ledger,
    ledger_entries,
    next_migration,
    record_outcome,
    record_start,
)
from platform_assets.lib.migrations.lint import lint
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.migrations.model import Check, Migration, discover

STATE_IO_MANAGER = "migration_state"


class MigrateConfig(dg.Config):
    """Run configuration of the migration job."""

    confirm: bool = False
    allow_out_of_order: bool = False
    ignore_lint_rules: list[str] = []
    batch_size: int | None = None
    pause_ms: int | None = None
    lock_timeout_ms: int = 500


@dataclass
class MigrationPlan:
    """What this run does, handed from op to op."""

    migration: Migration | None
    dry_run: bool
    timeouts: Timeouts
    baseline: dict = field(default_factory=dict)
    resume_after: int | None = None
    ddl_done: frozenset[str] = frozenset()  # DDL statements a resumed run must not redo

    def ddl_progress(self, step: str) -> DdlProgress:
        """The ledger-backed progress of ``step``'s DDL (see ``run_ddl``)."""
        assert self.migration is not None
        return DdlProgress(self.migration.id, step, self.ddl_done)


class MigrationFailed(Exception):
    """A step failed; the message says whether the rollback restored the baseline."""


def _failed_checks(lock: MigrationLock, checks: list[Check]) -> list[str]:
    return [c.description for c in checks if not lock.connection.execute(c.query).fetchone()[0]]


def _roll_back(
    context: dg.OpExecutionContext,
    plan: MigrationPlan,
    lock: MigrationLock,
    step: str,
    error: Exception,
) -> None:
    """Undo the migration, verify the baseline is back, record the outcome, and raise."""
    migration = plan.migration
    assert migration is not None
    conn = lock.connection
    try:
        run_ddl(conn, migration.down, plan.timeouts)
    except Exception as down_error:  # recorded as failed, then re-raised with both causes
        message = f"{step} failed ({error}); ROLLBACK FAILED ({down_error}): repair by hand"
        with conn.transaction():
            record_outcome(conn, migration.id, "failed", message)
        raise MigrationFailed(f"migration {migration.id}: {message}") from down_error
    now = {
        "columns": table_columns(conn, migration.schema, migration.table),
        **measure(conn, migration.schema, migration.table, migration.key, plan.baseline["columns"]),
    }
    found = differences(plan.baseline, now)
    status, verdict = (
        ("rolled_back", "rolled back; schema and data verified equal to the baseline")
        if not found
        else ("failed", f"ROLLBACK INCOMPLETE, the table differs from its baseline: {found}")
    )
    message = f"{step} failed ({type(error).__name__}: {error}); {verdict}"
    with conn.transaction():
        record_outcome(conn, migration.id, status, message)
    context.log.error(message)
    raise MigrationFailed(f"migration {migration.id}: {message}") from error


@contextmanager
def _rolled_back_on_failure(
    context: dg.OpExecutionContext, plan: MigrationPlan, lock: MigrationLock, step: str
) -> Iterator[None]:
    """Any failure inside rolls the migration back, verifies the baseline, and fails the step."""
    try:
        yield
    except Exception as error:  # every failure here is rolled back, then re-raised
        _roll_back(context, plan, lock, step, error)


def _applying(plan: MigrationPlan) -> bool:
    return plan.migration is not None and not plan.dry_run


@dg.op(
    out=dg.Out(io_manager_key=STATE_IO_MANAGER),
    required_resource_keys={"migrations", "migration_lock"},
)
def guard(context: dg.OpExecutionContext, config: MigrateConfig) -> MigrationPlan:
    """Hold the lock (the resource took it), check the ledger against the code, lint, plan."""
    conn = context.resources.migration_lock.connection
    with conn.transaction():
        ensure_ledger(conn)
    migrations: list[Migration] = context.resources.migrations
    migration = next_migration(migrations, ledger_entries(conn), config.allow_out_of_order)
    timeouts = Timeouts(lock_timeout_ms=config.lock_timeout_ms)
    if migration is None:
        context.log.info("no migration to apply: the ledger is up to date with the code")
        return MigrationPlan(None, dry_run=not config.confirm, timeouts=timeouts)
    if migration.backfill and (config.batch_size or config.pause_ms is not None):
        batch = migration.backfill
        migration = replace(
            migration,
            backfill=replace(
                batch,
                batch_size=config.batch_size or batch.batch_size,
                pause_s=batch.pause_s if config.pause_ms is None else config.pause_ms / 1000,
            ),
        )
    findings = [f for f in lint(migration) if f.rule not in config.ignore_lint_rules]
    whole_table = sql.SQL("SELECT 1 FROM {}").format(
        sql.Identifier(migration.schema, migration.table)
    )
    context.add_output_metadata(
        {
            "migration": migration.id,
            "dry_run": not config.confirm,
            "estimated_table_rows": explain_rows(conn, whole_table),
            "estimated_backfill_rows": (
                explain_rows(conn, migration.backfill.remaining) if migration.backfill else 0
            ),
            "lint_findings": dg.MetadataValue.json([f.__dict__ for f in findings]),
            "sql": dg.MetadataValue.md(
                "\n\n".join(f"```sql\n{s.strip()}\n```" for s in migration.statements())
            ),
        }
    )
    if findings and config.confirm:
        raise MigrationRefused(
            f"lint found {len(findings)} risky statement(s) in {migration.id}: "
            f"{[f.rule for f in findings]}; fix them or list the rules in ignore_lint_rules"
        )
    return MigrationPlan(migration, dry_run=not config.confirm, timeouts=timeouts)


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def pre_checks(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Refuse to start unless every pre-check of the migration passes."""
    if plan.migration is None:
        return plan
    failed = _failed_checks(migration_lock, plan.migration.pre_checks)
    if failed:
        raise MigrationRefused(f"pre-checks failed for {plan.migration.id}: {failed}")
    context.log.info(f"pre-checks passed: {[c.description for c in plan.migration.pre_checks]}")
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def baseline(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Row count, null counts and checksum of the table; on a resume, the first run's baseline."""
    migration = plan.migration
    if migration is None:
        return plan
    conn = migration_lock.connection
    entry = ledger_entries(conn).get(migration.id)
    if entry is not None and entry.status == RUNNING and entry.baseline:
        context.log.info(f"resuming {migration.id} after key {entry.backfill_last_key}")
        context.add_output_metadata(
            {
                "resumed_after_key": entry.backfill_last_key,
                "batches_already_done": entry.backfill_batches,
            }
        )
        return replace(
            plan,
            baseline=entry.baseline,
            resume_after=entry.backfill_last_key,
            ddl_done=frozenset(entry.ddl_done),
        )
    captured = capture_baseline(conn, migration.schema, migration.table, migration.key)
    context.log.info(
        f"baseline of {migration.schema}.{migration.table}: {captured['row_count']} rows,"
        f" checksum {captured['checksum']}"
    )
    return replace(plan, baseline=captured)


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def forward(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Record the start, back up the columns it destroys, run the forward DDL under lock_timeout."""
    if not _applying(plan):
        return plan
    migration = plan.migration
    conn = migration_lock.connection
    with conn.transaction():
        record_start(conn, migration, context.run_id, getpass.getuser(), plan.baseline)
    if migration.destroys_columns:
        kept = back_up_columns(
            conn,
            migration.schema,
            migration.table,
            migration.key,
            migration.destroys_columns,
            migration.id,
        )
        context.log.info(f"backed up {migration.destroys_columns} of {kept} rows before forward")
    with _rolled_back_on_failure(context, plan, migration_lock, "forward"):
        run_ddl(conn, migration.forward, plan.timeouts, plan.ddl_progress("forward"))
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def backfill(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Keyset batches, a commit each, progress in the ledger; resumes after a crash."""
    if not _applying(plan) or plan.migration.backfill is None:
        return plan

    def on_batch(progress: BackfillProgress, seconds: float) -> None:
        context.log.info(
            f"backfill batch {progress.batches}: {progress.rows} rows so far,"
            f" up to key {progress.last_key}, {seconds:.3f}s"
        )

    started = time.perf_counter()
    with _rolled_back_on_failure(context, plan, migration_lock, "backfill"):
        progress = run_backfill(
            migration_lock.connection,
            plan.migration.id,
            plan.migration.backfill,
            plan.resume_after,
            on_batch,
            plan.timeouts,
        )
    context.add_output_metadata(
        {
            "batches": progress.batches,
            "rows": progress.rows,
            "elapsed_s": time.perf_counter() - started,
            "median_batch_s": progress.median_batch_s,
            "longest_batch_s": progress.longest_batch_s,
        }
    )
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def constraints(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Constraints added NOT VALID, then validated: no long exclusive lock."""
    if not _applying(plan):
        return plan
    with _rolled_back_on_failure(context, plan, migration_lock, "constraints"):
        run_ddl(
            migration_lock.connection,
            plan.migration.constraints,
            plan.timeouts,
            plan.ddl_progress("constraints"),
        )
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def post_validate(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Row count against the baseline, then the migration's own checks.

    Not the checksum: the application may legitimately change rows while a backfill runs. The
    checksum is what proves a rollback restored the table.
    """
    if not _applying(plan):
        return plan
    migration = plan.migration
    conn = migration_lock.connection
    with _rolled_back_on_failure(context, plan, migration_lock, "post-validation"):
        problems = _failed_checks(migration_lock, migration.validate)
        before, after = (
            plan.baseline["row_count"],
            row_count(conn, migration.schema, migration.table),
        )
        if after != before:
            problems.insert(0, f"row count {before} before, {after} now")
        if problems:
            raise MigrationFailed(f"post-validation found: {problems}")
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER))
def record(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> dg.Output[str]:
    """Close the ledger entry as applied (a dry run records nothing)."""
    if plan.migration is None:
        return dg.Output("nothing to apply")
    if plan.dry_run:
        return dg.Output("dry run: nothing was changed", metadata={"migration": plan.migration.id})
    conn = migration_lock.connection
    with conn.transaction():
        record_outcome(conn, plan.migration.id, APPLIED, "applied and validated")
    return dg.Output(
        f"applied {plan.migration.id}", metadata={"baseline": json.dumps(plan.baseline)}
    )


@dg.job(
    name="migrate",
    description=__doc__,
    executor_def=dg.in_process_executor,  # the lock lives on one connection in one process
    tags={"dagster/max_retries": "0"},
)
def migrate_job() -> None:
    record(post_validate(constraints(backfill(forward(baseline(pre_checks(guard())))))))


def migration_resources(migrations: list[Migration] | None = None) -> dict[str, object]:
    """The job's own resources: the migrations to apply and the in-memory plan hand-over."""
    return {
        "migrations": dg.ResourceDefinition.hardcoded_resource(
            discover() if migrations is None else migrations
        ),
        STATE_IO_MANAGER: dg.mem_io_manager,
    }
