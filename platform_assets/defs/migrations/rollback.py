"""Undoing a migration after a failure, and proving the table is back to its baseline."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from platform_assets.defs.migrations.plan import MigrationFailed, MigrationPlan
from platform_assets.lib.migrations.baseline import (
    differences,
    measure,
    table_columns,
)
from platform_assets.lib.migrations.execution import (
    run_ddl,
)
from platform_assets.lib.migrations.ledger import (
    record_outcome,
)
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.migrations.model import Check
from platform_assets.lib.warehouse.transient import is_transient


def failed_checks(lock: MigrationLock, checks: list[Check]) -> list[str]:
    """The descriptions of the ``checks`` whose query is false, run on the lock's connection."""
    return [c.description for c in checks if not lock.connection.execute(c.query).fetchone()[0]]


def roll_back_migration(
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
def rolled_back_on_failure(
    context: dg.OpExecutionContext, plan: MigrationPlan, lock: MigrationLock, step: str
) -> Iterator[None]:
    """Any failure inside rolls the migration back, verifies the baseline, and fails the step;
    except a transient one (a lost connection, a server restarting): the migration stays running
    in the ledger and the step's retry, or the next run, resumes it where it stopped."""
    try:
        yield
    except Exception as error:  # every failure here is rolled back or resumed, then re-raised
        if is_transient(error):
            context.log.warning(f"{step} met a transient error; it resumes on retry: {error}")
            raise
        roll_back_migration(context, plan, lock, step, error)
