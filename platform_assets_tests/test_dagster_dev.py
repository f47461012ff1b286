"""`dg dev` from the repository root (the README's command), driven through its GraphQL API with
Dagster's own client (``dagster-graphql``), making the calls the UI makes.

With nothing launched by hand, the landing-file sensor loads the days whose files landed (adjacent
days in one run) and automation follows with their metrics. A 60-day partition backfill launched
through the API runs in no more runs than the backfill policy implies, with the right rows in
every partition. A range of days runs as one run. The replay job runs from the launchpad with its
default config, and everything is still there after a restart.
"""

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil
from dagster import DagsterRunStatus
from psycopg import sql

from platform_assets.lib import settings
from platform_assets.lib.dagster_dev.client import DagsterDevClient
from platform_assets.lib.dagster_dev.process import (
    free_port,
    running_dagster_dev,
    stop_process_group,
    wait_for,
)
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import ASSET_KEYS, REPO_ROOT
from platform_assets_tests.helpers import fetch_all

TODAY = datetime.now(UTC).date()
LANDED = [TODAY - timedelta(days=n) for n in (5, 4, 3)]
BACKFILLED = [TODAY - timedelta(days=n) for n in range(70, 10, -1)]  # 60 days
CHECK_STATUSES = """
{ assetNodeOrError(assetKey: {path: ["sales", "orders"]}) { ... on AssetNode {
    assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses {
      ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } } }"""
MATERIALIZED_PARTITIONS = """
{ assetNodes { assetKey { path } assetMaterializations(limit: 5) { partition runId } } }"""


@contextmanager
def dagster_dev(landing_dir: Path, log_path: Path, instance_url: str) -> Iterator[DagsterDevClient]:
    """`dagster dev` on a free port with ``landing_dir`` as its landing zone and the Dagster
    instance stored in the database at ``instance_url``."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env[settings.LANDING_DIR_VAR] = str(landing_dir)
    env[settings.DAGSTER_STORAGE_URL_VAR] = instance_url
    client = DagsterDevClient(free_port())
    with running_dagster_dev(REPO_ROOT, client.port, env, log_path, client.ready):
        yield client


@contextmanager
def quiet_dagster_dev(
    landing_dir: Path, log_path: Path, instance_url: str
) -> Iterator[DagsterDevClient]:
    """``dagster_dev`` with its landing sensors and automation turned off and the runs they
    requested at startup ended: only what the test launches runs."""
    with dagster_dev(landing_dir, log_path, instance_url) as client:
        for sensor in ("orders_landing_files", "shop_events_landing_files", "platform_automation"):
            client.stop_sensor(sensor)
        wait_for(lambda: not client.runs_in_progress(), 180, "the first automation runs to end")
        yield client


def per_day(warehouse: Warehouse, query: str) -> dict[str, int]:
    return {day: int(n) for day, n in fetch_all(warehouse, sql.SQL(query))}


def loaded_days(warehouse: Warehouse) -> dict[str, int]:
    """Orders stored per day, counted in the table."""
    if not fetch_all(warehouse, sql.SQL("SELECT to_regclass('sales.orders')"))[0][0]:
        return {}
    return per_day(warehouse, "SELECT order_date::text, count(*) FROM sales.orders GROUP BY 1")


def metric_days(warehouse: Warehouse) -> dict[str, int]:
    """Orders counted by the metrics per day."""
    if not fetch_all(warehouse, sql.SQL("SELECT to_regclass('sales.daily_order_metrics')"))[0][0]:
        return {}
    return per_day(
        warehouse,
        "SELECT metric_date::text, sum(order_count) FROM sales.daily_order_metrics GROUP BY 1",
    )


def accounted(warehouse: Warehouse) -> dict[str, tuple[int, int]]:
    """Rows read and loaded per partition, as the accounting recorded them."""
    rows = fetch_all(
        warehouse,
        sql.SQL("SELECT partition_key, rows_read, rows_loaded FROM platform.ingestion_accounting"),
    )
    return {key: (int(read), int(loaded)) for key, read, loaded in rows}


def check_statuses(client: DagsterDevClient) -> dict[str, dict[str, str]]:
    """``{check: {partition: status}}`` of the orders' partitioned checks, as the UI shows them."""
    node = client.query(CHECK_STATUSES)["assetNodeOrError"]
    statuses: dict[str, dict[str, str]] = {}
    for check in node["assetChecksOrError"]["checks"]:
        ranges = (check["partitionStatuses"] or {}).get("ranges", [])
        by_day = statuses.setdefault(check["name"], {})
        for status_range in ranges:
            day = date.fromisoformat(status_range["startKey"])
            while day <= date.fromisoformat(status_range["endKey"]):
                by_day[day.isoformat()] = status_range["status"]
                day += timedelta(days=1)
    return statuses


def data_lines(landing_dir: Path, day: date) -> int:
    """The day's file's data lines, counted here from its bytes."""
    (path,) = (landing_dir / "orders").glob(f"orders_{day.isoformat()}*.csv")
    return path.read_bytes().count(b"\n") - 1


def landed_ranges(client: DagsterDevClient) -> list[tuple[str, str, str]]:
    """The orders landing asset's partition ranges by status, as its partitions page shows."""
    node = client.query(
        '{ assetNodeOrError(assetKey: {path: ["landing", "orders_files"]}) { ... on AssetNode {'
        " assetPartitionStatuses { ... on TimePartitionStatuses {"
        " ranges { status startKey endKey } } } } } }"
    )["assetNodeOrError"]
    ranges = node["assetPartitionStatuses"]["ranges"]
    return [(r["status"], r["startKey"], r["endKey"]) for r in ranges]


def latest_landing_report(client: DagsterDevClient) -> str:
    """The description of the orders landing asset's latest observation."""
    asset = client.query(
        '{ assetOrError(assetKey: {path: ["landing", "orders_files"]}) { ... on Asset {'
        " assetObservations(limit: 1) { description } } } }"
    )["assetOrError"]
    return asset["assetObservations"][0]["description"]


def test_dagster_dev_runs_itself_backfills_in_few_runs_and_survives_restart(
    clean_warehouse: Warehouse, tmp_path: Path, instance_database_url: str
) -> None:
    landing_dir, log_path = tmp_path / "landing", tmp_path / "dagster-dev.log"
    for n, day in enumerate(LANDED):
        write_day(landing_dir / "orders", day, orders=300, seed=n, malformed_share=0.02)
    landed = {day.isoformat() for day in LANDED}

    with dagster_dev(landing_dir, log_path, instance_database_url) as client:
        nodes = client.query("{ assetNodes { assetKey { path } } }")["assetNodes"]
        assert {"/".join(n["assetKey"]["path"]) for n in nodes} == ASSET_KEYS

        # Nothing launched by hand: the sensor loads the landed days, automation the metrics.
        def followed() -> bool:
            return set(metric_days(clean_warehouse)) == landed

        wait_for(followed, 300, f"the landed days loaded and followed (log: {log_path})")
        assert loaded_days(clean_warehouse) == metric_days(clean_warehouse)
        sensor_runs = client.runs_tagged("trigger", "landing_files")
        assert len(sensor_runs) == 1  # three adjacent days: one range run
        assert sensor_runs[0].tags["dagster/asset_partition_range_start"] == min(landed)
        # The landing asset's partitions page shows the days that landed, as the UI reads it,
        # and its page what the sensor saw but did not load (here: nothing, once all settled).
        assert landed_ranges(client) == [("MATERIALIZED", min(landed), max(landed))]
        assert latest_landing_report(client) == "every orders file seen is loaded"

        # A 60-day partition backfill of orders and metrics, as the UI's dialog launches it, with
        # the sensors off.
        client.stop_sensor("orders_landing_files")
        client.stop_sensor("platform_automation")
        for n, day in enumerate(BACKFILLED):
            write_day(landing_dir / "orders", day, orders=40, seed=100 + n, malformed_share=0.02)
        backfill_id = client.launch_backfill(
            [["sales", "orders"], ["sales", "daily_order_metrics"]],
            [day.isoformat() for day in BACKFILLED],
        )
        assert client.wait_for_backfill(backfill_id, 600) in ("COMPLETED", "COMPLETED_SUCCESS")
        runs = client.runs_tagged("dagster/backfill", backfill_id)
        assert all(run.status == "SUCCESS" for run in runs)
        assert len(runs) == 1  # the single-run backfill policy: 60 days of both assets, one run
        loaded, figures = loaded_days(clean_warehouse), accounted(clean_warehouse)
        for day in BACKFILLED:
            key = day.isoformat()
            read, rows_loaded = figures[key]
            assert read == data_lines(landing_dir, day)  # one record per line in these files
            assert loaded[key] == rows_loaded > 0
        assert metric_days(clean_warehouse) == loaded

        # The UI's per-partition check status is what was checked, day by day, and a failed run
        # for a day without files marks that day alone.
        missing_day = (BACKFILLED[0] - timedelta(days=1)).isoformat()
        failed_run = client.submit_job_execution(
            "load_orders", tags={"dagster/partition": missing_day}
        )
        assert client.wait_for_run(failed_run, 240) == DagsterRunStatus.FAILURE
        statuses = check_statuses(client)
        for name in ("rows_add_up", "keys_valid"):  # dead_letter_ratio may warn on 40-row days
            assert {statuses[name][day.isoformat()] for day in BACKFILLED} == {"SUCCEEDED"}, name
            assert statuses[name].get(missing_day) != "SUCCEEDED", name

        # A range of days as one run, as the UI's "Single run" does, launched and followed with
        # the client's own calls.
        ranged = [TODAY - timedelta(days=n) for n in (9, 8, 7)]
        for n, day in enumerate(ranged):
            write_day(landing_dir / "orders", day, orders=60, seed=300 + n, malformed_share=0.02)
        range_run = client.submit_job_execution(
            "load_orders",
            tags={
                "dagster/asset_partition_range_start": ranged[0].isoformat(),
                "dagster/asset_partition_range_end": ranged[-1].isoformat(),
            },
        )
        assert client.wait_for_run(range_run, 240) == DagsterRunStatus.SUCCESS
        figures = accounted(clean_warehouse)
        for day in ranged:
            assert figures[day.isoformat()][0] == data_lines(landing_dir, day)
            assert loaded_days(clean_warehouse)[day.isoformat()] == figures[day.isoformat()][1]

        # The replay job, launched from the launchpad with the dataset named, replays the
        # orders' dead letters (the default dataset is the first declared, customers).
        replay_run = client.submit_job_execution(
            "replay_dead_letters_job",
            run_config={"ops": {"replay_dead_letters": {"config": {"dataset": "orders"}}}},
        )
        assert client.wait_for_run(replay_run, 240) == DagsterRunStatus.SUCCESS
        attempts = fetch_all(
            clean_warehouse,
            sql.SQL("SELECT DISTINCT attempt_count FROM platform.dead_letter_records"),
        )
        assert attempts == [(2,)]

    printed = log_path.read_text(errors="replace")  # the README's command says nothing misleading
    assert "temporary directory" not in printed and "superseded" not in printed
    assert "does not match the virtual environment" not in printed

    with dagster_dev(landing_dir, log_path, instance_database_url) as client:
        assert client.get_run_status(replay_run) == DagsterRunStatus.SUCCESS
        nodes = client.query(MATERIALIZED_PARTITIONS)["assetNodes"]
        orders = next(n for n in nodes if n["assetKey"]["path"] == ["sales", "orders"])
        loads = {r.run_id for r in runs} | {range_run}
        assert {m["runId"] for m in orders["assetMaterializations"]} <= loads


def test_stopping_a_process_group_leaves_nothing_of_it() -> None:
    """A child that ignores the polite signal while its parent obeys it (as a code server of
    `dagster dev` once did, outliving its test by half an hour) is killed with the group."""
    stubborn = "(trap '' TERM; sleep 300) & echo started; wait"
    leader = subprocess.Popen(
        ["bash", "-c", stubborn], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert leader.stdout is not None and leader.stdout.readline() == "started\n"
    group = leader.pid

    stop_process_group(leader, signal.SIGTERM, 5)

    wait_for(lambda: _alive_in_group(group) == [], 10, f"process group {group} to be gone")


def _alive_in_group(group: int) -> list[int]:
    """The processes of ``group`` still running (a killed one waiting to be reaped is not)."""
    alive = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return alive
