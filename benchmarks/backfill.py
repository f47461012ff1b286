"""Backfill benchmark: a 30-day backfill launched through `dagster dev` as the UI does, against the
same 30 partitions materialised in one process.

    python benchmarks/backfill.py [--days 30] [--orders 2000]

Writes ``--days`` order files of about ``--orders`` orders each, starts a real ``dagster dev``
(webserver and daemon) on a free port with its instance and warehouse in a temporary directory,
and turns its sensors off so that nothing but the benchmark launches runs. It then measures, in
this order, each on empty tables:

- ``in_process_s``: ``dg.materialize`` of ``sales/orders`` and ``sales/daily_order_metrics`` with
  their checks over the whole range, in this process (definitions already imported);
- ``backfill_daemon_s``: the backfill launched through GraphQL, from launch until its last run
  ends, and ``runs_launched``, the runs it took;
- ``one_partition_run_s``: one more partition launched through GraphQL, from launch to success;
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _drop_tables(warehouse) -> None:
    with warehouse.connection() as conn:
        for schema in ("sales", "platform"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _import_seconds() -> float:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import platform_assets.definitions"], check=True, cwd=REPO_ROOT
        )
        timings.append(time.perf_counter() - started)
    return min(timings)


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
    import dagster as dg

    from platform_assets.definitions import defs
    from platform_assets.defs.datasets.checks import build_dataset_checks
    from platform_assets.defs.datasets.specs import SPECS_BY_NAME
    from platform_assets.lib.dagster_dev.client import LOCATION, DagsterDevClient
    from platform_assets.lib.dagster_dev.process import free_port, running_dagster_dev
    from platform_assets.lib.samples.sample_orders import write_day
    from platform_assets.lib.server.embedded import stop_embedded_server

    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(args.days + 10, 10, -1)]
    single_day = today - timedelta(days=5)
    keys = [day.isoformat() for day in days]
    assets = [["sales", "orders"], ["sales", "daily_order_metrics"]]
    figures: dict[str, object] = {"days": args.days, "orders_per_day": args.orders}
    client = DagsterDevClient(free_port())
    try:
        with running_dagster_dev(
            REPO_ROOT,
            client.port,
            os.environ,
            data_dir / "dagster-dev.log",
            lambda: client.query("{ version }"),
        ):
            for sensor in ("orders_landing_files", "platform_automation"):
                client.stop_sensor(sensor)
            for n, day in enumerate([*days, single_day]):
                write_day(
                    landing_dir / "orders", day, orders=args.orders, seed=n, malformed_share=0.01
                )
            repository = defs.get_repository_def()
            warehouse = defs.resources["warehouse"]

            graph_assets = [repository.assets_defs_by_key[dg.AssetKey(key)] for key in assets]
            started = time.perf_counter()
            result = dg.materialize(
                [*graph_assets, *build_dataset_checks(SPECS_BY_NAME["orders"])],
                tags={
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                },
                resources=defs.resources,
            )
            figures["in_process_s"] = round(time.perf_counter() - started, 2)
            assert result.success
            _drop_tables(warehouse)

            started = time.perf_counter()
            backfill_id = client.launch_backfill(assets, keys)
            status = client.wait_for_backfill(backfill_id, 1800)
            figures["backfill_daemon_s"] = round(time.perf_counter() - started, 2)
            runs = client.runs_tagged("dagster/backfill", backfill_id)
            figures["backfill_status"] = status
            figures["runs_launched"] = len(runs)
            figures["backfill_daemon_vs_in_process"] = round(
                figures["backfill_daemon_s"] / figures["in_process_s"], 2
            )

            started = time.perf_counter()
            run_id = client.launch_run(
                {
                    "selector": {**LOCATION, "jobName": "load_orders"},
                    "executionMetadata": {
                        "tags": [{"key": "dagster/partition", "value": single_day.isoformat()}]
                    },
                }
            )
            figures["one_partition_status"] = client.wait_for_run(run_id, 600)
            figures["one_partition_run_s"] = round(time.perf_counter() - started, 2)
            warehouse.close()
        figures["definitions_import_s"] = round(_import_seconds(), 2)
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
