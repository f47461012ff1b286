"""`dagster dev` from the repository root, driven through GraphQL the way the UI drives it.

The UI comes up, the assets are listed, a partition materialises with its checks, its rows land in
Postgres, the dead-letter replay job runs from the launchpad, and the run and its materialisations
are still there after `dagster dev` is restarted.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from psycopg import sql

from platform_assets.lib import settings
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import ASSET_KEYS, REPO_ROOT, SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all

PARTITION = SAMPLE_DAYS[0].isoformat()
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
MATERIALIZED_PARTITIONS = """
{ assetNodes { assetKey { path } assetMaterializations(limit: 5) { partition runId } } }"""


LOCATION = {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__"}


def launch(port: int, log_path: Path, params: dict) -> str:
    """Launch a run as the UI's launchpad does, wait for it, and return its id once it succeeded."""
    launched = graphql(port, LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        status = graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    assert wait_for(finished, 240, f"run {run_id} (log: {log_path})") == "SUCCESS"
    return run_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """POST a GraphQL query to the webserver and return its ``data``."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def wait_for(condition, timeout: float, what: str):
    """Poll ``condition`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def dagster_dev(port: int, landing_dir: Path, log_path: Path) -> Iterator[None]:
    """Run `dagster dev` from the repository root until the block ends, then stop it."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env[settings.LANDING_DIR_VAR] = str(landing_dir)
    dagster = Path(sys.executable).with_name("dagster")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(dagster), "dev", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A shell starts background jobs with SIGINT ignored, and children inherit that: then
            # `dagster dev` would never see the SIGINT that stops it. It must, however launched.
            preexec_fn=_default_sigint,
        )
    try:
        wait_for(lambda: graphql(port, "{ version }"), 180, f"dagster dev (log: {log_path})")
        yield
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_dagster_dev_materialises_and_survives_restart(
    clean_warehouse: Warehouse, landing_dir: Path, tmp_path: Path
) -> None:
    port, log_path = free_port(), tmp_path / "dagster-dev.log"
    with dagster_dev(port, landing_dir, log_path):
        nodes = graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        assert {"/".join(n["assetKey"]["path"]) for n in nodes} == ASSET_KEYS
        nodes = [n for n in nodes if n["assetKey"]["path"][0] == "sales"]
        checks = [
            {"assetKey": {"path": ["sales", "orders"]}, "name": name}
            for name in ("rows_add_up", "dead_letter_ratio")
        ]
        run_id = launch(
            port,
            log_path,
            {
                "selector": {
                    **LOCATION,
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": n["assetKey"]["path"]} for n in nodes],
                    "assetCheckSelection": checks,
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]},
            },
        )
        # The replay job from the launchpad: every dead letter of the day is tried again.
        replay = {"dataset": "orders", "partitions": [PARTITION]}
        launch(
            port,
            log_path,
            {
                "selector": {**LOCATION, "jobName": "replay_dead_letters_job"},
                "runConfigData": {"ops": {"replay_dead_letters": {"config": replay}}},
            },
        )
        attempts = fetch_all(
            clean_warehouse,
            sql.SQL("SELECT DISTINCT attempt_count FROM platform.dead_letter_records"),
        )
        assert attempts == [(2,)]

    metrics = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT metric_date::text, sum(order_count) FROM sales.daily_order_metrics GROUP BY 1"
        ),
    )
    orders = fetch_all(clean_warehouse, sql.SQL("SELECT count(*) FROM sales.orders"))
    assert metrics == [(PARTITION, orders[0][0])] and orders[0][0] > 0

    with dagster_dev(port, landing_dir, log_path):
        assert graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"] == "SUCCESS"
        nodes = graphql(port, MATERIALIZED_PARTITIONS)["assetNodes"]
        for node in (n for n in nodes if n["assetKey"]["path"][0] == "sales"):
            assert {"partition": PARTITION, "runId": run_id} in node["assetMaterializations"]
