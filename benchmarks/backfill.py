"""Backfill benchmark: a 30-day backfill launched through `dagster dev` as the UI does, against the
same 30 partitions materialised in one process.

    python benchmarks/backfill.py [--days 30] [--orders 2000]

Writes ``--days`` order files of about ``--orders`` orders each, starts a real ``dagster dev``
(webserver and daemon) on a free port with its instance and warehouse in a temporary directory,
and turns its sensors off so that nothing but the benchmark launches runs. Then, each arm on empty
tables, ``sales/orders`` and ``sales/daily_order_metrics`` with their checks over the same days:

- ``in_process_s``: one ``dg.materialize`` of the whole range in this process (definitions
  already imported), the fastest way there is; ``in_process_per_partition_s``: one
  ``dg.materialize`` per day in this process, the baseline the issue measured (28 s then);
- ``backfill_daemon_s``: the backfill launched through GraphQL (``launchPartitionBackfill``), from
  launch until its last run ends (the data is there), with ``runs_launched``,
  ``backfill_first_run_start_s`` (Dagster's backfill daemon looks for new backfills every 30 s, a
  fixed interval) and ``backfill_marked_complete_s`` (it marks the backfill complete on its next
  look after that);
- ``single_run_s``: the range as one run with the range's tags, launched at once as
  ``dg launch --partition-range`` launches it (``launchRun``), launch to success, no daemon
  involved (Dagster 1.13's launch dialog for assets does not offer this);
- ``one_partition_run_s``: one more day through the dataset's load job, launch to success;
- ``definitions_import_s``: the best of three imports of ``platform_assets.definitions`` in a
  fresh interpreter.

Everything is deleted afterwards. The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg import sql
from support import range_tags

if TYPE_CHECKING:  # imported for real once the environment names the temporary data directory
    import dagster as dg

    from platform_assets.lib.dagster_dev.client import DagsterDevClient
    from platform_assets.lib.warehouse.resource import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = [["sales", "orders"], ["sales", "daily_order_metrics"]]


def drop_tables(warehouse: "Warehouse") -> None:
    """Empty the warehouse for the next arm."""
    with warehouse.connection() as conn:
        for schema in ("sales", "platform"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def import_seconds() -> float:
    """The best of three imports of the code location in a fresh interpreter."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import platform_assets.definitions"], check=True, cwd=REPO_ROOT
        )
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure(
    client: "DagsterDevClient", defs: "dg.Definitions", keys: list[str], single_day: date
) -> dict[str, object]:
    """Every arm in turn (see the module docstring)."""
    import dagster as dg

    from platform_assets.defs.datasets.assets import dataset_assets
    from platform_assets.defs.datasets.checks import build_dataset_checks
    from platform_assets.defs.datasets.specs import SPECS_BY_NAME
    from platform_assets.defs.sales.assets import daily_order_metrics
    from platform_assets.defs.sales.checks import reconciles_with_orders
    from platform_assets.lib.dagster_dev.client import LOCATION

    figures: dict[str, object] = {}
    warehouse = defs.resources["warehouse"]
    orders = next(a for a in dataset_assets if a.key == dg.AssetKey(ASSETS[0]))
    assets = [
        orders,
        daily_order_metrics,
        *build_dataset_checks(SPECS_BY_NAME["orders"]),
        reconciles_with_orders,
    ]

    started = time.perf_counter()
    ranged = dg.materialize(assets, tags=range_tags(keys[0], keys[-1]), resources=defs.resources)
    figures["in_process_s"] = round(time.perf_counter() - started, 2)
    assert ranged.success
    drop_tables(warehouse)

    started = time.perf_counter()
    for key in keys:
        assert dg.materialize(assets, partition_key=key, resources=defs.resources).success
    figures["in_process_per_partition_s"] = round(time.perf_counter() - started, 2)
    drop_tables(warehouse)

    launched_at = time.time()
    backfill_id = client.launch_backfill(ASSETS, keys)
    figures["backfill_status"] = client.wait_for_backfill(backfill_id, 1800)
    figures["backfill_marked_complete_s"] = round(time.time() - launched_at, 2)
    runs = client.runs_tagged("dagster/backfill", backfill_id)
    figures["runs_launched"] = len(runs)
    figures["backfill_first_run_start_s"] = round(min(r.start_time for r in runs) - launched_at, 2)
    figures["backfill_daemon_s"] = round(max(r.end_time for r in runs) - launched_at, 2)
    drop_tables(warehouse)

    started = time.perf_counter()
    single = client.submit_job_execution(
        "__ASSET_JOB",
        repository_location_name=LOCATION["repositoryLocationName"],
        repository_name=LOCATION["repositoryName"],
        tags=range_tags(keys[0], keys[-1]),
        asset_selection=ASSETS,
    )
    figures["single_run_status"] = client.wait_for_run(single, 1800).value
    figures["single_run_s"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    one = client.submit_job_execution(
        "load_orders", tags={"dagster/partition": single_day.isoformat()}
    )
    figures["one_partition_status"] = client.wait_for_run(one, 600).value
    figures["one_partition_run_s"] = round(time.perf_counter() - started, 2)
    warehouse.close()

    for arm in ("backfill_daemon", "single_run"):
        figures[f"{arm}_vs_in_process"] = round(figures[f"{arm}_s"] / figures["in_process_s"], 2)
        figures[f"{arm}_vs_in_process_per_partition"] = round(
            figures[f"{arm}_s"] / figures["in_process_per_partition_s"], 2
        )
    return figures


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="platform-backfill-bench-"))
    landing_dir = data_dir / "landing"
    os.environ["PLATFORM_DATA_DIR"] = str(data_dir)
    os.environ["PLATFORM_LANDING_DIR"] = str(landing_dir)
    os.environ.pop("DAGSTER_HOME", None)
    # Imported once the environment names the temporary data directory.
    from platform_assets.definitions import defs
    from platform_assets.lib.dagster_dev.client import DagsterDevClient
    from platform_assets.lib.dagster_dev.process import free_port, running_dagster_dev
    from platform_assets.lib.samples.sample_orders import write_day
    from platform_assets.lib.server.embedded import stop_embedded_server

    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(args.days + 10, 10, -1)]
    single_day = today - timedelta(days=5)
    figures: dict[str, object] = {"days": args.days, "orders_per_day": args.orders}
    client = DagsterDevClient(free_port())
    try:
        with running_dagster_dev(
            REPO_ROOT,
            client.port,
            os.environ,
            data_dir / "dagster-dev.log",
            client.ready,
        ):
            for sensor in ("orders_landing_files", "platform_automation"):
                client.stop_sensor(sensor)
            for n, day in enumerate([*days, single_day]):
                orders = args.orders
                write_day(landing_dir / "orders", day, orders=orders, seed=n, malformed_share=0.01)
            figures.update(measure(client, defs, [day.isoformat() for day in days], single_day))
        figures["definitions_import_s"] = round(import_seconds(), 2)
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
