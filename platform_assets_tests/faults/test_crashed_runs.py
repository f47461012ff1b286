"""A run killed under ``dg dev`` blocks nothing: with the warehouse pool at one slot, a load's run
worker is SIGKILLed (as the OOM killer or a lost node kills it) while it holds that slot and a
second load waits for it. With no operator action the killed run is marked failed, its slot is
freed, the waiting load runs, and Dagster's run retry loads the killed run's day again, every line
accounted for."""

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterRunStatus

from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.lib.dagster_dev.process import wait_for
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.test_dagster_dev import (
    accounted,
    data_lines,
    loaded_days,
    quiet_dagster_dev,
)

TODAY = datetime.now(UTC).date()
KILLED_DAY, WAITING_DAY = TODAY - timedelta(days=20), TODAY - timedelta(days=19)


def test_a_killed_run_frees_its_slot_and_is_retried_with_no_operator_action(
    clean_warehouse: Warehouse, tmp_path: Path, instance_database_url: str
) -> None:
    landing_dir, log_path = tmp_path / "landing", tmp_path / "dagster-dev.log"
    landing_dir.mkdir()
    with quiet_dagster_dev(landing_dir, log_path, instance_database_url) as client:
        client.set_pool_limit(WAREHOUSE_POOL, 1)
        # A day long enough to be killed in the middle of, and a small one.
        write_day(landing_dir / "orders", KILLED_DAY, orders=300_000, seed=1, malformed_share=0.01)
        write_day(landing_dir / "orders", WAITING_DAY, orders=500, seed=2, malformed_share=0.01)

        killed = client.submit_job_execution(
            "load_orders", tags={"dagster/partition": KILLED_DAY.isoformat()}
        )
        wait_for(lambda: killed in client.slot_holders(WAREHOUSE_POOL), 120, "the slot taken")
        waiting = client.submit_job_execution(
            "load_orders", tags={"dagster/partition": WAITING_DAY.isoformat()}
        )
        os.kill(client.worker_pid(killed), signal.SIGKILL)

        assert client.wait_for_run(waiting, 180) == DagsterRunStatus.SUCCESS
        assert client.get_run_status(killed) == DagsterRunStatus.FAILURE
        retried = wait_for(
            lambda: client.runs_tagged("dagster/parent_run_id", killed), 120, "the run retried"
        )
        assert client.wait_for_run(retried[0].run_id, 240) == DagsterRunStatus.SUCCESS
        assert client.slot_holders(WAREHOUSE_POOL) == []

    loaded, figures = loaded_days(clean_warehouse), accounted(clean_warehouse)
    for day in (KILLED_DAY, WAITING_DAY):
        read, rows_loaded = figures[day.isoformat()]
        assert read == data_lines(landing_dir, day)
        assert loaded[day.isoformat()] == rows_loaded > 0
