"""The ops of the migration job, one per step, each handing the plan to the next.

A transient error (a lost connection, a server restarting) fails a step for its retry policy to
run it again, resuming from the ledger; any other error is final (``dg.Failure`` that allows no
retry): a refused or rolled-back migration is never tried again by itself.
"""

import getpass
import json
import time
from dataclasses import replace

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
from psycopg import sql

from platform_assets.defs.migrations.plan import (
    STATE_IO_MANAGER,
    MigrateConfig,
    MigrationFailed,
    MigrationPlan,
    applying,
    why_skipped,
)
from platform_assets.defs.migrations.rollback import failed_checks, rolled_back_on_failure
from platform_assets.defs.migrations.spec_changes import plan_from_specs
from platform_assets.defs.retries import WAREHOUSE_RETRY_POLICY
from platform_assets.lib.migrations.baseline import (
    back_up_columns,
    capture_baseline,
    explain_rows,
    row_count,
)
from platform_assets.lib.migrations.chains import ChainedMigrations
from platform_assets.lib.migrations.execution import (
    BackfillProgress,
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
from platform_assets.lib.migrations.lint import lint, postgres_version
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.migrations.model import Migration
from platform_assets.lib.warehouse.transient import permanent_unless_transient


@dg.op(
    out=dg.Out(io_manager_key=STATE_IO_MANAGER),
    required_resource_keys={"migrations", "migration_lock", "dataset_specs"},
    retry_policy=WAREHOUSE_RETRY_POLICY,
)
@permanent_unless_transient("migrate: guard")
def guard(context: dg.OpExecutionContext, config: MigrateConfig) -> MigrationPlan:
    """Hold the lock (the resource took it), check the ledger against the code and the migrations
    planned from the dataset specs, lint, plan."""
    lock: MigrationLock = context.resources.migration_lock
    conn = lock.connection
    with conn.transaction():
        ensure_ledger(conn)
    with adbc.connect(lock.warehouse.conninfo()) as tables:  # closed here: one per run
        from_specs = plan_from_specs(tables, context.resources.dataset_specs)
    chained: ChainedMigrations = context.resources.migrations
    context.add_output_metadata(
        {
            "planned_from_specs": dg.MetadataValue.json(
                [{"id": m.id, "description": m.description} for m in from_specs.migrations]
            ),
            "unplanned_spec_changes": dg.MetadataValue.json(from_specs.unplanned),
            "not_applicable_here": dg.MetadataValue.json(chained.not_applicable),
        }
    )
    migrations: list[Migration] = [*chained.applicable, *from_specs.migrations]
    migration = next_migration(
        migrations, ledger_entries(conn), config.allow_out_of_order, chained.known_ids
    )
    timeouts = Timeouts(lock_timeout_ms=config.lock_timeout_ms)
    if migration is None:
        context.log.info(
            "no migration to apply: the ledger is up to date with the code, and every dataset's"
            " table with its spec"
        )
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
    linted = lint(migration, timeouts, postgres_version(conn.info.server_version))
    findings = [f for f in linted if f.rule not in config.ignore_lint_rules]
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


def skipped(context: dg.OpExecutionContext, plan: MigrationPlan) -> MigrationPlan:
    """Mark the step as skipped (output metadata and the log), and hand the plan on."""
    reason = why_skipped(plan)
    context.add_output_metadata({"skipped": reason})
    context.log.info(reason)
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: pre checks")
def pre_checks(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Refuse to start unless every pre-check of the migration passes."""
    if plan.migration is None:
        return plan
    failed = failed_checks(migration_lock, plan.migration.pre_checks)
    if failed:
        raise MigrationRefused(f"pre-checks failed for {plan.migration.id}: {failed}")
    context.log.info(f"pre-checks passed: {[c.description for c in plan.migration.pre_checks]}")
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: baseline")
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
        context.log.info(f"resuming {migration.id} after {entry.backfill_position}")
        context.add_output_metadata(
            {
                "resumed_after": dg.MetadataValue.json(entry.backfill_position),
                "batches_already_done": entry.backfill_batches,
            }
        )
        return replace(
            plan,
            baseline=entry.baseline,
            resume_after=entry.backfill_position,
            ddl_done=frozenset(entry.ddl_done),
        )
    captured = capture_baseline(conn, migration.schema, migration.table, migration.key)
    context.log.info(
        f"baseline of {migration.schema}.{migration.table}: {captured['row_count']} rows,"
        f" checksum {captured['checksum']}"
    )
    return replace(plan, baseline=captured)


def with_ledger_progress(plan: MigrationPlan, lock: MigrationLock) -> MigrationPlan:
    """``plan`` with the DDL done and the backfill's position as the ledger has them now: a step
    retried after a lost connection resumes where its last attempt committed, as a new run would."""
    assert plan.migration is not None
    entry = ledger_entries(lock.connection).get(plan.migration.id)
    if entry is None or entry.status != RUNNING:
        return plan
    return replace(plan, resume_after=entry.backfill_position, ddl_done=frozenset(entry.ddl_done))


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: forward")
def forward(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Record the start, back up the columns it destroys, run the forward DDL under lock_timeout."""
    if not applying(plan):
        return skipped(context, plan)
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
    progress = with_ledger_progress(plan, migration_lock).ddl_progress("forward")
    with rolled_back_on_failure(context, plan, migration_lock, "forward"):
        run_ddl(conn, migration.forward, plan.timeouts, progress)
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: backfill")
def backfill(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Batches in key order (or physical order for a keyless table), a commit each, progress in
    the ledger; resumes after a crash."""
    if not applying(plan):
        return skipped(context, plan)
    if plan.migration.backfill is None:
        context.add_output_metadata({"skipped": "skipped: the migration has no backfill"})
        return plan

    def on_batch(progress: BackfillProgress, seconds: float) -> None:
        context.log.info(
            f"backfill batch {progress.batches}: {progress.rows} rows so far,"
            f" up to {progress.position}, {seconds:.3f}s"
        )

    started = time.perf_counter()
    resume_after = with_ledger_progress(plan, migration_lock).resume_after
    with rolled_back_on_failure(context, plan, migration_lock, "backfill"):
        progress = run_backfill(
            migration_lock.connection,
            plan.migration.id,
            plan.migration.backfill,
            resume_after,
            on_batch,
            plan.timeouts,
        )
    context.add_output_metadata(
        {
            "batches": progress.batches,
            "rows": progress.rows,
            "sweeps": progress.sweeps,
            "elapsed_s": time.perf_counter() - started,
            "median_batch_s": progress.median_batch_s,
            "longest_batch_s": progress.longest_batch_s,
        }
    )
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: constraints")
def constraints(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Constraints added NOT VALID, then validated: no long exclusive lock."""
    if not applying(plan):
        return skipped(context, plan)
    progress = with_ledger_progress(plan, migration_lock).ddl_progress("constraints")
    with rolled_back_on_failure(context, plan, migration_lock, "constraints"):
        run_ddl(migration_lock.connection, plan.migration.constraints, plan.timeouts, progress)
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: post validate")
def post_validate(
    context: dg.OpExecutionContext, plan: MigrationPlan, migration_lock: MigrationLock
) -> MigrationPlan:
    """Row count against the baseline, then the migration's own checks.

    Not the checksum: the application may legitimately change rows while a backfill runs. The
    checksum is what proves a rollback restored the table.
    """
    if not applying(plan):
        return skipped(context, plan)
    migration = plan.migration
    conn = migration_lock.connection
    with rolled_back_on_failure(context, plan, migration_lock, "post-validation"):
        problems = failed_checks(migration_lock, migration.validate)
        before, after = (
            plan.baseline["row_count"],
            row_count(conn, migration.schema, migration.table),
        )
        if after != before:
            problems.insert(0, f"row count {before} before, {after} now")
        if problems:
            raise MigrationFailed(f"post-validation found: {problems}")
    return plan


@dg.op(out=dg.Out(io_manager_key=STATE_IO_MANAGER), retry_policy=WAREHOUSE_RETRY_POLICY)
@permanent_unless_transient("migrate: record")
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
