"""A migration killed in a step after ``forward`` resumes on the next run: every DDL statement
already committed is skipped (it is recorded in the ledger in its own transaction), no backfill
batch is redone, and the migration ends applied, not rolled back."""

import os
import subprocess
import sys
import time
from dataclasses import replace

import psycopg
from psycopg import sql

from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import CUSTOMERS, SAMPLE_MIGRATIONS, run_migrations

TIER = SAMPLE_MIGRATIONS[0]
PAUSE_FLAG = "crm.pause_migration"
# The tier migration with a pause after its first constraint while the flag table exists: the
# pause is where the test kills the run. The same migration, with the flag gone, resumes it.
PAUSED_IN_CONSTRAINTS = replace(
    TIER,
    constraints=[
        TIER.constraints[0],
        f"SELECT pg_sleep(CASE WHEN to_regclass('{PAUSE_FLAG}') IS NULL THEN 0 ELSE 120 END)",
        *TIER.constraints[1:],
    ],
)
RUN_PAUSED = "\n".join(
    [
        "import os",
        "from platform_assets.lib.warehouse.resource import Warehouse",
        "from platform_assets_tests.migrations.conftest import run_migrations",
        "from platform_assets_tests.migrations.test_resume import PAUSED_IN_CONSTRAINTS",
        "warehouse = Warehouse(database_url=os.environ['MIGRATION_TEST_URL'])",
        "run_migrations(warehouse, [PAUSED_IN_CONSTRAINTS], confirm=True, batch_size=50,"
        " pause_ms=0)",
    ]
)


def paused_sessions(observer: psycopg.Connection) -> list[int]:
    rows = observer.execute(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(CASE%%'"
        " AND state = 'active'"
    ).fetchall()
    return [pid for (pid,) in rows]


def test_killed_in_constraints_resumes_without_redoing_anything(shop: Warehouse) -> None:
    with shop.connection() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} ()").format(sql.Identifier(*PAUSE_FLAG.split("."))))
    env = {**os.environ, "MIGRATION_TEST_URL": shop.conninfo()}
    process = subprocess.Popen([sys.executable, "-c", RUN_PAUSED], env=env)
    with psycopg.connect(shop.conninfo(), autocommit=True) as observer:
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not paused_sessions(observer):
                time.sleep(0.05)
            assert paused_sessions(observer), "the run never reached its constraints"
        finally:
            process.kill()  # SIGKILL: no cleanup, no rollback
            process.wait(timeout=30)
        for pid in paused_sessions(observer):  # the server has not noticed the client died
            observer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        observer.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(*PAUSE_FLAG.split("."))))
    killed = fetch_all(
        shop,
        sql.SQL("SELECT status, backfill_batches, ddl_done FROM platform.migration_ledger"),
    )
    assert killed == [("running", CUSTOMERS // 50, ["forward:0", "forward:1", "constraints:0"])]

    resumed = run_migrations(shop, [PAUSED_IN_CONSTRAINTS], confirm=True, batch_size=50, pause_ms=0)

    assert resumed.success
    [(status, batches, rows, done)] = fetch_all(
        shop,
        sql.SQL(
            "SELECT status, backfill_batches, backfill_rows, ddl_done"
            " FROM platform.migration_ledger"
        ),
    )
    assert (status, batches, rows) == ("applied", CUSTOMERS // 50, CUSTOMERS)  # none redone
    assert done == [
        "forward:0",
        "forward:1",
        "constraints:0",
        *(f"constraints:{i}" for i in range(1, len(PAUSED_IN_CONSTRAINTS.constraints))),
    ]
    backfill = next(
        e for e in resumed.all_events if e.step_key == "backfill" and e.is_successful_output
    ).step_output_data.metadata
    assert backfill["batches"].value == 0
    constraints = fetch_all(
        shop,
        sql.SQL(
            "SELECT conname, convalidated FROM pg_constraint"
            " WHERE conrelid = 'crm.customers'::regclass AND contype = 'c'"
        ),
    )
    assert constraints == [("customers_tier_check", True)]
