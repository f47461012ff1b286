"""Runs under ``dg dev`` start in a worker that was waiting for them, and such a run can be
terminated: the worker a run is handed to is one that was already running before the run was
submitted, it is the process that executes the run, a new worker waits for the next run, Terminate
cancels a run in the middle of its load (nothing of its day is committed), and no worker outlives
``dg dev``. The worker process itself: it preloads only libraries, reports a module it cannot
import and still runs, and ends quietly when its launcher goes away."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import yaml
from dagster import DagsterRunStatus

from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.lib import settings
from platform_assets.lib.dagster_dev.client import DagsterDevClient
from platform_assets.lib.dagster_dev.process import wait_for
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.server.run_launcher import RUN_WORKER_TAG
from platform_assets.lib.server.warm_workers import WORKER_MODULE
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT
from platform_assets_tests.test_dagster_dev import loaded_days, quiet_dagster_dev

TODAY = datetime.now(UTC).date()
LOADED_DAY, TERMINATED_DAY = TODAY - timedelta(days=30), TODAY - timedelta(days=29)
PRELOADED = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["run_launcher"]["config"][
    "preload_modules"
]


def workers_of(landing_dir: Path) -> set[int]:
    """The pids of the run workers of the ``dg dev`` whose landing zone is ``landing_dir``."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if WORKER_MODULE in (process.info["cmdline"] or []) and process.environ().get(
                settings.LANDING_DIR_VAR
            ) == str(landing_dir):
                found.add(process.info["pid"])
        except psutil.Error:  # ended while looked at
            continue
    return found


def one_waiting(landing_dir: Path) -> set[int] | None:
    """The one worker of that ``dg dev``, once the workers of ended runs have exited."""
    workers = workers_of(landing_dir)
    return workers if len(workers) == 1 else None


def worker_of(client: DagsterDevClient, run_id: str, day: str) -> dict:
    """The worker the launcher recorded on the run."""
    (run,) = [r for r in client.runs_tagged("dagster/partition", day) if r.run_id == run_id]
    return json.loads(run.tags[RUN_WORKER_TAG])


def test_runs_start_in_waiting_workers_and_terminate(
    clean_warehouse: Warehouse, tmp_path: Path, instance_database_url: str
) -> None:
    landing_dir, log_path = tmp_path / "landing", tmp_path / "dagster-dev.log"
    landing_dir.mkdir()
    with quiet_dagster_dev(landing_dir, log_path, instance_database_url) as client:
        write_day(landing_dir / "orders", LOADED_DAY, orders=500, seed=1, malformed_share=0.01)
        write_day(
            landing_dir / "orders", TERMINATED_DAY, orders=300_000, seed=2, malformed_share=0.01
        )

        # The automation's runs at startup have ended: one worker waits for the next run.
        waiting = wait_for(lambda: one_waiting(landing_dir), 60, "one worker waiting")
        loaded = client.submit_job_execution(
            "load_orders", tags={"dagster/partition": LOADED_DAY.isoformat()}
        )
        assert client.wait_for_run(loaded, 180) == DagsterRunStatus.SUCCESS
        worker = worker_of(client, loaded, LOADED_DAY.isoformat())
        assert {worker["pid"]} == waiting  # started before the run was submitted
        assert client.worker_pid(loaded) == worker["pid"]  # the process that ran it says so
        next_waiting = wait_for(lambda: one_waiting(landing_dir), 60, "the next worker alone")
        assert not next_waiting & waiting

        terminated = client.submit_job_execution(
            "load_orders", tags={"dagster/partition": TERMINATED_DAY.isoformat()}
        )
        wait_for(lambda: terminated in client.slot_holders(WAREHOUSE_POOL), 120, "the load")
        assert {worker_of(client, terminated, TERMINATED_DAY.isoformat())["pid"]} == next_waiting
        client.terminate_run(terminated)
        assert client.wait_for_run(terminated, 120) == DagsterRunStatus.CANCELED
        wait_for(lambda: one_waiting(landing_dir) not in (None, next_waiting), 60, "its exit")
        assert client.slot_holders(WAREHOUSE_POOL) == []

    assert set(loaded_days(clean_warehouse)) == {LOADED_DAY.isoformat()}  # no half day
    wait_for(lambda: not workers_of(landing_dir), 30, "the waiting worker to end with dg dev")


def test_a_worker_preloads_libraries_not_the_code_location() -> None:
    assert PRELOADED and not any(m.split(".")[0] == "platform_assets" for m in PRELOADED)
    probe = (
        "import json, sys; from platform_assets.lib.server.run_worker import preload; "
        f"preload({PRELOADED!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('platform_assets.'))))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    # The worker's own module and its packages; nothing of the code location.
    assert json.loads(imported.stdout) == [
        "platform_assets.lib",
        "platform_assets.lib.server",
        "platform_assets.lib.server.run_worker",
    ]


def test_a_worker_reports_what_it_cannot_preload_and_ends_with_its_input() -> None:
    worker = subprocess.run(
        [sys.executable, "-m", WORKER_MODULE, "json", "no_such_module_here"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0
    assert "could not preload no_such_module_here" in worker.stderr
    assert "ModuleNotFoundError" in worker.stderr
