"""Fault injection: the tier migration SIGKILLed at seeded random moments of a confirmed run.

The kill may land in any step: the guard, the pre-checks, the baseline, the forward DDL, the
backfill's batches, the constraints or the ledger's record. Afterwards no advisory lock or busy
session is left, the ledger holds no entry, a ``running`` one or an ``applied`` one, and the next
confirmed run, with no operator action, ends ``applied`` with every customer's tier right and no
row lost: a fresh start, a resumption, or nothing left to do.

The default run keeps ``KILL_TRIALS_SHORT`` kills; ``pytest -m faults`` runs ``KILL_TRIALS_LONG``.
"""

import signal
import textwrap

import pytest
from psycopg import sql

from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.faults.killing import KillMoments, settled_leftovers
from platform_assets_tests.faults.test_killed_loads import SEED
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import CUSTOMERS, SAMPLE_MIGRATIONS, run_migrations
from platform_assets_tests.migrations.test_migration_job import expected_tier, ledger

TIER = SAMPLE_MIGRATIONS[0]
KILL_TRIALS_SHORT = 3
KILL_TRIALS_LONG = 13
BATCH = {"batch_size": 20, "pause_ms": 20}  # 25 batches: a run long enough to be hit anywhere

MIGRATOR = textwrap.dedent(
    f"""
    import sys
    from platform_assets.lib.warehouse.resource import Warehouse
    from platform_assets_tests.migrations.conftest import SAMPLE_MIGRATIONS, run_migrations

    warehouse = Warehouse(database_url=sys.argv[1])
    print("started", flush=True)
    result = run_migrations(warehouse, SAMPLE_MIGRATIONS[:1], confirm=True, **{BATCH!r})
    sys.exit(0 if result.success else 1)
    """
)


def tiers_right(warehouse: Warehouse) -> bool:
    tiers = dict(fetch_all(warehouse, sql.SQL("SELECT id, tier FROM crm.customers")))
    return len(tiers) == CUSTOMERS and all(
        tier == expected_tier(customer) for customer, tier in tiers.items()
    )


def undo(warehouse: Warehouse) -> None:
    """Back to before the migration: its own ``down``, its ledger entry and its backup gone."""
    with warehouse.connection() as conn:
        for statement in TIER.down:
            conn.execute(statement)
        conn.execute("DELETE FROM platform.migration_ledger")
        conn.execute("DROP SCHEMA IF EXISTS migration_backup CASCADE")


def run_migration_kill_trials(kills: int, warehouse: Warehouse) -> dict[str, int]:
    url = warehouse.conninfo()
    moments = KillMoments(MIGRATOR, url, seed=f"{SEED}:migrate")
    assert [row[1] for row in ledger(warehouse)] == ["applied"] and tiers_right(warehouse)

    tally = {"killed, nothing recorded": 0, "killed, running": 0, "killed, applied": 0}
    finished_first, killed_runs = 0, 0
    while killed_runs < kills:
        assert finished_first <= 2 * kills, f"the runs kept finishing first: {tally}"
        undo(warehouse)
        code = moments.kill()
        assert settled_leftovers(warehouse) == []
        statuses = [row[1] for row in ledger(warehouse)]
        assert statuses in ([], ["running"], ["applied"]), statuses
        if code == 0:
            finished_first += 1
            assert statuses == ["applied"]
        else:
            assert code == -signal.SIGKILL
            killed_runs += 1
            outcome = {"running": "running", "applied": "applied"}.get(
                statuses[0] if statuses else "", "nothing recorded"
            )
            tally[f"killed, {outcome}"] += 1
        resumed = run_migrations(warehouse, SAMPLE_MIGRATIONS[:1], confirm=True, **BATCH)
        assert resumed.success  # the next run: resumes, starts afresh, or finds nothing to do
        assert [row[1] for row in ledger(warehouse)] == ["applied"] and tiers_right(warehouse)
    print(f"migration kill trials (seed {SEED}, run {moments.run_s:.1f} s): {tally}")
    return tally


def test_killed_migrations_end_applied_on_the_next_run_short(shop: Warehouse) -> None:
    tally = run_migration_kill_trials(KILL_TRIALS_SHORT, shop)
    assert sum(tally.values()) == KILL_TRIALS_SHORT


@pytest.mark.faults
def test_killed_migrations_end_applied_on_the_next_run_long(shop: Warehouse) -> None:
    tally = run_migration_kill_trials(KILL_TRIALS_LONG, shop)
    assert sum(tally.values()) == KILL_TRIALS_LONG
