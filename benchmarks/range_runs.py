"""Range-run benchmark: checks, metrics and run overhead over ranges of days, as ratios measured
in the same run.

    python benchmarks/range_runs.py [--metric-orders 1000000] [--metric-days 10]
        [--check-days 31] [--check-orders 900] [--dev-days 120] [--dev-orders 2000]
        [--dev-repeats 3]

An arm given 0 days is skipped (the metrics arm needs the checks arm). Uses a temporary data
directory (embedded server, landing zone, Dagster instance), deleted
afterwards. The arms:

- checks: ``--check-days`` order files of about ``--check-orders`` orders loaded as one range run
  with every partition check of ``sales/orders``: ``checks_vs_load_31d`` is the check steps'
  time summed over the load step's (step start to success, from the run's events), and
  ``check_statements_31d_vs_1d`` the statements the checks send the warehouse for the range over
  those for its last day alone (``lib/warehouse/statement_count``);
- metrics: ``--metric-days`` days of ``--metric-orders`` orders each are generated in the orders
  table by SQL, then ``sales/daily_order_metrics`` is materialised for one day and for the whole
  range, each in a fresh process: ``metrics_peak_rss_mb_1d``/``_10d`` (each process's peak RSS),
  ``metrics_rss_10d_vs_1d``, and ``metrics_vs_sql_groupby``: the range's metrics step over the
  same aggregates as one bare SQL ``GROUP BY`` fetched by psycopg;
- dg dev: ``--dev-days`` days of ``--dev-orders`` orders, ``sales/orders`` and its metrics over the
  whole range as one run launched through a real ``dg dev`` (launch to the run's recorded end),
  against the same range materialised in this process, each ``--dev-repeats`` times on emptied
  tables: ``in_process_s`` and ``dg_dev_s`` list every time, ``dg_dev_vs_in_process`` is the ratio
  of their medians. ``dg dev``'s processes keep compiled bytecode (in the temporary directory,
  ``PYTHONPYCACHEPREFIX``) even where the environment says not to write it
  (``PYTHONDONTWRITEBYTECODE``, as some sandboxes and images set): otherwise every run worker
  would compile the code location from source, which a developer's machine does once.

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from support import peak_rss_mb, range_tags, run_arm

if TYPE_CHECKING:  # imported for real once the environment names the temporary data directory
    import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECK_FIRST = date(2026, 6, 1)
METRIC_FIRST = date(2026, 8, 1)
DEV_FIRST = date(2026, 1, 2)
ORDERS_KEY = ["sales", "orders"]
METRICS_KEY = ["sales", "daily_order_metrics"]
# Bare SQL of the metrics' aggregates, the baseline: what a user would run by hand.
GROUP_BY = (
    "SELECT order_date, currency, count(*),"
    " count(*) FILTER (WHERE status NOT IN ('cancelled', 'returned')),"
    " count(*) FILTER (WHERE status IN ('cancelled', 'returned')),"
    " sum(amount) FILTER (WHERE status NOT IN ('cancelled', 'returned')),"
    " round(avg(amount) FILTER (WHERE status NOT IN ('cancelled', 'returned')), 2),"
    " count(DISTINCT customer_id)"
    " FROM sales.orders WHERE order_date >= %s AND order_date < %s GROUP BY 1, 2"
)


def days_from(first: date, count: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(count)]


def step_seconds(instance: "dg.DagsterInstance", run_id: str) -> dict[str, float]:
    """Each step's time in the run, from its start to its success events."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    return seconds


def checks_arm(resources: dict, days: list[date], orders: int, landing: Path) -> dict:
    """The range's load and its checks, timed by step; the checks' statements for the range and
    for its last day alone."""
    import dagster as dg

    from platform_assets.defs.datasets.assets import dataset_assets
    from platform_assets.defs.datasets.checks import build_dataset_checks
    from platform_assets.defs.datasets.specs import SPECS_BY_NAME
    from platform_assets.lib.samples.sample_orders import write_day
    from platform_assets.lib.warehouse.statement_count import counted_statements

    for n, day in enumerate(days):
        write_day(landing / "orders", day, orders=orders, seed=n, malformed_share=0.01)
    orders_asset = next(a for a in dataset_assets if a.key == dg.AssetKey(ORDERS_KEY))
    checks = [
        c for c in build_dataset_checks(SPECS_BY_NAME["orders"]) if c.partitions_def is not None
    ]
    with dg.DagsterInstance.ephemeral() as instance:
        loaded = dg.materialize(
            [orders_asset, *checks],
            tags=range_tags(days[0], days[-1]),
            resources=resources,
            instance=instance,
        )
        assert loaded.success
        steps = step_seconds(instance, loaded.run_id)
        load_s = steps.pop("sales__orders")
        checks_s = sum(steps.values())

        def checks_alone(tags: dict[str, str]) -> int:
            job = dg.define_asset_job("checks", selection=dg.AssetSelection.checks(*checks))
            defs = dg.Definitions(
                assets=[orders_asset], asset_checks=checks, jobs=[job], resources=resources
            )
            with counted_statements() as counted:
                result = defs.resolve_job_def("checks").execute_in_process(
                    tags=tags, instance=instance
                )
            assert result.success
            return sum(counted.values())

        one_day = checks_alone({"dagster/partition": days[-1].isoformat()})
        whole_range = checks_alone(range_tags(days[0], days[-1]))
    return {
        "check_days": len(days),
        "load_step_s": round(load_s, 2),
        "check_steps_s": round(checks_s, 2),
        "checks_vs_load_31d": round(checks_s / load_s, 3),
        "check_statements_1d": one_day,
        "check_statements_31d": whole_range,
        "check_statements_31d_vs_1d": round(whole_range / one_day, 3),
    }


def generate_orders(url: str, days: list[date], per_day: int) -> None:
    """``per_day`` orders on each of ``days`` written into sales.orders by SQL (the table exists:
    the checks arm loaded it), with row hashes, as a load would have stored them."""
    with psycopg.connect(url, autocommit=True) as conn:
        for n, day in enumerate(days):
            first_id = 10_000_000 * (n + 1)
            conn.execute(
                sql.SQL(
                    "INSERT INTO sales.orders (order_id, customer_id, order_date, ordered_at,"
                    " status, channel, currency, quantity, unit_price, discount, amount,"
                    " _row_hash)"
                    " SELECT id, 1 + (id * 7919) %% 50000, %(day)s::date,"
                    " %(day)s::date + make_interval(secs => id %% 86400),"
                    " (ARRAY['placed','paid','shipped','delivered','cancelled','returned'])"
                    "[1 + id %% 6],"
                    " (ARRAY['web','mobile','store','partner'])[1 + id %% 4],"
                    " (ARRAY['EUR','USD','GBP'])[1 + id %% 3], 1 + id %% 9,"
                    " ((id %% 10000) / 100.0)::numeric(12,2), 0,"
                    " ((id %% 10000) / 100.0 * (1 + id %% 9))::numeric(14,2),"
                    " decode(md5(id::text), 'hex')"
                    " FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS id"
                ),
                {"day": day, "first": first_id, "last": first_id + per_day - 1},
            )
        conn.execute("ANALYZE sales.orders")


def metrics_child(first: str, last: str) -> None:
    """In a fresh process: the metrics of ``first``..``last`` in one run; its figures."""
    import dagster as dg

    from platform_assets.definitions import defs
    from platform_assets.defs.sales.assets import daily_order_metrics

    with dg.DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = dg.materialize(
            [daily_order_metrics],
            tags=range_tags(first, last),
            resources=defs.resources,
            instance=instance,
        )
        run_s = time.perf_counter() - started
        assert result.success
        step_s = step_seconds(instance, result.run_id)["sales__daily_order_metrics"]
    print(json.dumps({"run_s": round(run_s, 2), "step_s": round(step_s, 2), "rss": peak_rss_mb()}))


def metrics_arm(url: str, days: list[date], per_day: int) -> dict:
    """The metrics of one day and of the range, each in its own process; the bare GROUP BY."""
    generate_orders(url, days, per_day)
    script = str(Path(__file__).resolve())
    one = run_arm(script, "metrics", Path(f"{days[0]}..{days[0]}"))
    whole = run_arm(script, "metrics", Path(f"{days[0]}..{days[-1]}"))
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        rows = conn.execute(GROUP_BY, (days[0], days[-1] + timedelta(days=1))).fetchall()
        group_by_s = time.perf_counter() - started
        stored = conn.execute(
            "SELECT count(*) FROM sales.daily_order_metrics WHERE metric_date >= %s"
            " AND metric_date <= %s",
            (days[0], days[-1]),
        ).fetchone()[0]
    assert stored == len(rows), (stored, len(rows))
    return {
        "metric_days": len(days),
        "metric_orders_per_day": per_day,
        "metrics_peak_rss_mb_1d": one["rss"],
        "metrics_peak_rss_mb_10d": whole["rss"],
        "metrics_rss_10d_vs_1d": round(whole["rss"] / one["rss"], 3),
        "metrics_step_s_1d": one["step_s"],
        "metrics_step_s_10d": whole["step_s"],
        "sql_groupby_s_10d": round(group_by_s, 2),
        "metrics_vs_sql_groupby": round(whole["step_s"] / group_by_s, 3),
    }


def drop_sales(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in ("sales", "platform"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run_profile(instance: "dg.DagsterInstance", run_id: str, launched_at: float) -> dict:
    """Where a run's time went: launch to start, each step, the events it wrote."""
    from collections import Counter

    run = instance.get_run_record_by_id(run_id)
    assert run is not None and run.start_time is not None and run.end_time is not None
    logs = instance.all_logs(run_id)
    events = Counter(
        entry.dagster_event.event_type_value if entry.dagster_event else "log_message"
        for entry in logs
    )
    lifecycle = {
        entry.dagster_event.event_type_value: round(entry.timestamp - launched_at, 2)
        for entry in logs
        if entry.dagster_event
        and entry.dagster_event.event_type_value.startswith(("PIPELINE_", "RUN_"))
    }
    return {
        "launch_to_start_s": round(run.start_time - launched_at, 2),
        "run_events_after_launch_s": lifecycle,
        "start_to_end_s": round(run.end_time - run.start_time, 2),
        "steps_s": {k: round(v, 2) for k, v in step_seconds(instance, run_id).items()},
        "events": dict(events.most_common(8)),
        "events_total": sum(events.values()),
    }


def median_run(timed: Callable[[], tuple[float, dict]], repeats: int) -> tuple[list[float], dict]:
    """Every repetition's seconds, and the profile of the median one: the machine's noise
    (another process, a checkpoint) moves one run by seconds, not the median of several."""
    runs = sorted((timed() for _ in range(repeats)), key=lambda run: run[0])
    return [round(seconds, 2) for seconds, _ in runs], runs[len(runs) // 2][1]


def dg_dev_arm(url: str, days: list[date], orders: int, landing: Path, repeats: int) -> dict:
    """The range of orders and metrics, with their checks, as one run in process, then launched
    through dg dev as the UI launches it; each ``repeats`` times on emptied tables."""
    import dagster as dg

    from platform_assets.definitions import defs
    from platform_assets.lib.dagster_dev.client import LOCATION, DagsterDevClient
    from platform_assets.lib.dagster_dev.process import free_port, running_dagster_dev, wait_for
    from platform_assets.lib.samples.sample_orders import write_day

    for n, day in enumerate(days):
        write_day(landing / "orders", day, orders=orders, seed=100 + n, malformed_share=0.01)
    selection = dg.AssetSelection.assets(ORDERS_KEY, METRICS_KEY)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(selection.resolve(defs.resolve_asset_graph())),
        asset_check_selection=set(selection.resolve_checks(defs.resolve_asset_graph())),
    )

    def in_process() -> tuple[float, dict]:
        drop_sales(url)
        with dg.DagsterInstance.ephemeral() as instance:
            started = time.time()
            ran = job.execute_in_process(tags=range_tags(days[0], days[-1]), instance=instance)
            assert ran.success
            # Launch to the run's recorded end, as under dg dev below.
            ended = instance.get_run_record_by_id(ran.run_id).end_time
            return ended - started, run_profile(instance, ran.run_id, started)

    in_process_s, in_process_profile = median_run(in_process, repeats)

    client = DagsterDevClient(free_port())
    log = Path(os.environ["PLATFORM_DATA_DIR"]) / "dagster-dev.log"

    def launched() -> tuple[float, dict]:
        drop_sales(url)
        started = time.time()
        run_id = client.submit_job_execution(
            "__ASSET_JOB",
            repository_location_name=LOCATION["repositoryLocationName"],
            repository_name=LOCATION["repositoryName"],
            tags=range_tags(days[0], days[-1]),
            asset_selection=[ORDERS_KEY, METRICS_KEY],
        )
        status = client.wait_for_run(run_id, 3600).value
        assert status == "SUCCESS", status
        with dg.DagsterInstance.from_config(str(REPO_ROOT)) as dev_instance:
            # Until the run's own end, not until this loop's poll saw it.
            ended = dev_instance.get_run_record_by_id(run_id).end_time
            return ended - started, run_profile(dev_instance, run_id, started)

    # Bytecode kept as on a developer's machine (see the module docstring), in the data directory.
    environment = {**os.environ, "PYTHONPYCACHEPREFIX": str(log.parent / "pycache")}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    with running_dagster_dev(REPO_ROOT, client.port, environment, log, client.ready):
        for sensor in ("orders_landing_files", "platform_automation"):
            client.stop_sensor(sensor)
        # What the sensors requested at dg dev's start would share the two cores with the run.
        wait_for(lambda: not client.runs_in_progress(), 300, "the runs requested at startup")
        dg_dev_s, dg_dev_profile = median_run(launched, repeats)
    return {
        "dev_days": len(days),
        "dev_orders_per_day": orders,
        "in_process_s": in_process_s,
        "dg_dev_s": dg_dev_s,
        "dg_dev_vs_in_process": round(median(dg_dev_s) / median(in_process_s), 3),
        "in_process_profile": in_process_profile,
        "dg_dev_profile": dg_dev_profile,
    }


def main() -> None:
    """Run every arm in a temporary data directory and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm")
    parser.add_argument("--target")
    parser.add_argument("--metric-orders", type=int, default=1_000_000)
    parser.add_argument("--metric-days", type=int, default=10)
    parser.add_argument("--check-days", type=int, default=31)
    parser.add_argument("--check-orders", type=int, default=900)
    parser.add_argument("--dev-days", type=int, default=120)
    parser.add_argument("--dev-orders", type=int, default=2000)
    parser.add_argument("--dev-repeats", type=int, default=3)
    args = parser.parse_args()
    if args.arm == "metrics":
        metrics_child(*args.target.split(".."))
        return

    data_dir = Path(tempfile.mkdtemp(prefix="platform-range-bench-"))
    landing = data_dir / "landing"
    os.environ["PLATFORM_DATA_DIR"] = str(data_dir)
    os.environ["PLATFORM_LANDING_DIR"] = str(landing)
    os.environ.pop("DAGSTER_HOME", None)
    # Imported once the environment names the temporary data directory.
    from platform_assets.definitions import defs
    from platform_assets.lib import settings
    from platform_assets.lib.server.embedded import embedded_admin_url, stop_embedded_server

    figures: dict[str, object] = {}
    try:
        resources = defs.resources
        url = settings.configured_url(settings.WAREHOUSE_URL_VAR) or embedded_admin_url(
            settings.WAREHOUSE_DATABASE
        )
        if args.check_days:  # the metrics arm writes into the orders table this one creates
            checks = days_from(CHECK_FIRST, args.check_days)
            figures.update(checks_arm(resources, checks, args.check_orders, landing))
            if args.metric_days:
                metrics = days_from(METRIC_FIRST, args.metric_days)
                figures.update(metrics_arm(url, metrics, args.metric_orders))
        if args.dev_days:
            dev = days_from(DEV_FIRST, args.dev_days)
            figures.update(dg_dev_arm(url, dev, args.dev_orders, landing, args.dev_repeats))
    finally:
        resources["warehouse"].close()
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)  # gigabytes otherwise
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
