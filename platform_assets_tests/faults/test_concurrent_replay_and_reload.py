"""A replay and a reload of the same day never deadlock: run against each other again and again,
and each run while another transaction holds the locks the other would hold.

One process reloads the day ``RELOADS`` times under the strict spec of ``test_killed_replays`` (a
quarter of the rows become letters the shipped spec accepts); another replays the day's letters
over and over until the reloads are done, so the two meet at every step of each other. Every run
must succeed and PostgreSQL must count no deadlock.

The race itself is rare (a load preparing its tables while a replay moves from its letters to the
content digests), so the second test makes it certain: with another transaction holding row locks
on every platform table and the advisory locks of their DDL, as a replay in the middle of its
transaction does, a load and a replay must both go through. Before the platform's DDL ran once
only, the load's ``CREATE INDEX IF NOT EXISTS`` waited there for a SHARE lock.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql

from platform_assets.defs.datasets.replay import replay_dead_letters_job
from platform_assets.lib import settings
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT
from platform_assets_tests.faults.test_killed_loads import DAY, KEY
from platform_assets_tests.faults.test_killed_replays import STRICT_ORDERS
from platform_assets_tests.helpers import fetch_all

RELOADS = 8
RELOADER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import dagster as dg
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.sources.landing_zone import LandingZone
    from platform_assets.lib.warehouse.resource import Warehouse
    from platform_assets_tests.faults.test_killed_replays import STRICT_ORDERS

    key, landing, done, reloads = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    warehouse = Warehouse()
    resources = {
        "warehouse": warehouse,
        # no retry inside the write: a deadlock would show as a failed attempt
        "io_manager": PostgresIOManager(warehouse=warehouse, transient_attempts=1),
        "landing": LandingZone(directory=landing),
    }
    failed = 0
    for _ in range(reloads):
        loaded = dg.materialize([STRICT_ORDERS], partition_key=key, resources=resources)
        failed += not loaded.success
    done.touch()
    sys.exit(failed)
    """
)
REPLAYER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from platform_assets.defs.datasets.replay import replay_dead_letters_job
    from platform_assets.lib.warehouse.resource import Warehouse

    key, done = sys.argv[1], Path(sys.argv[2])
    config = {"dataset": "orders", "partitions": [key]}
    replays = failed = 0
    while not done.exists():
        replays += 1
        failed += not replay_dead_letters_job.execute_in_process(
            run_config={"ops": {"replay_dead_letters": {"config": config}}},
            resources={"warehouse": Warehouse()},
            raise_on_error=False,
        ).success
    print(f"{replays} replays", flush=True)
    sys.exit(failed)
    """
)


def deadlocks(warehouse: Warehouse) -> int:
    """Deadlocks PostgreSQL has detected in the warehouse database."""
    query = sql.SQL("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    return fetch_all(warehouse, query)[0][0]


def test_replay_and_reload_of_one_day_never_deadlock(
    clean_warehouse: Warehouse, tmp_path: Path
) -> None:
    write_day(tmp_path / "orders", DAY, orders=4_000, seed=5, malformed_share=0.03)
    done = tmp_path / "reloads-done"
    env = {**os.environ, settings.LANDING_DIR_VAR: str(tmp_path)}

    def start(script: str, *args: object) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start(RELOADER, KEY, tmp_path, done, 1)  # the tables exist, the day has letters
    assert first.wait(timeout=300) == 0, first.stderr.read()
    done.unlink()
    before = deadlocks(clean_warehouse)
    reloader = start(RELOADER, KEY, tmp_path, done, RELOADS)
    replayer = start(REPLAYER, KEY, done)
    try:
        assert reloader.wait(timeout=600) == 0, reloader.stderr.read()[-3000:]
        assert replayer.wait(timeout=300) == 0, replayer.stderr.read()[-3000:]
    finally:
        for process in (reloader, replayer):
            process.kill()
    replays = int(replayer.stdout.read().split()[0])
    assert replays >= 2, "the replays did not run against the reloads"
    clean_warehouse.close()  # this process's sessions end too: every count is flushed
    assert deadlocks(clean_warehouse) == before


def test_a_load_and_a_replay_take_no_lock_a_running_replay_holds(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    write_day(tmp_path / "orders", DAY, orders=400, seed=5, malformed_share=0.03)
    quick = Warehouse(database_url=resources["warehouse"].database_url, lock_timeout_ms=2_000)
    resources = {
        "warehouse": quick,
        "io_manager": PostgresIOManager(warehouse=quick, transient_attempts=1),
        "landing": LandingZone(directory=str(tmp_path)),
    }

    def load() -> bool:
        return dg.materialize(
            [STRICT_ORDERS], partition_key=KEY, resources=resources, instance=instance
        ).success

    def replay() -> bool:
        return replay_dead_letters_job.execute_in_process(
            run_config={"ops": {"replay_dead_letters": {"config": {"dataset": "orders"}}}},
            resources={"warehouse": quick},
            instance=instance,
        ).success

    assert load() and replay() and load()  # every platform table exists
    with psycopg.connect(quick.conninfo()) as blocker:
        names = [
            name
            for (name,) in blocker.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'platform'"
            )
        ]
        tables = sql.SQL(", ").join(sql.Identifier("platform", name) for name in names)
        blocker.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(tables))
        for name in names:  # the advisory locks the platform's DDL would take
            blocker.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"ddl|platform.{name}",)
            )
        assert load() and replay()
    quick.close()
