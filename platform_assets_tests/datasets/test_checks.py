"""Each check passes on a good partition and fails on a deliberately bad one, read from what is
stored in Postgres."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.defs.sales.assets import daily_order_metrics
from platform_assets.defs.sales.checks import reconciles_with_orders
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.helpers import fetch_all, run_checks_alone
from platform_assets_tests.sales.test_every_line_accounted import CHECKS
from platform_assets_tests.sales.test_pipeline import ORDERS

FIRST = date(2026, 9, 1)


def evaluations(result: dg.ExecuteInProcessResult, name: str) -> dict[str, dg.AssetCheckEvaluation]:
    """The evaluations of check ``name`` in ``result``, by partition."""
    return {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == name}


def load_days(
    tmp_path: Path, resources: dict, instance: dg.DagsterInstance, sizes: list[int], assets: list
) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """Order files of ``sizes`` orders for consecutive days from ``FIRST``, loaded day by day."""
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    keys, result = [], None
    for n, orders in enumerate(sizes):
        day = FIRST + timedelta(days=n)
        write_day(tmp_path / "orders", day, orders=orders, seed=n, malformed_share=0.0)
        result = dg.materialize(
            assets,
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        keys.append(day.isoformat())
    assert result is not None
    return result, keys


def test_row_volume_warns_then_errs_as_a_day_strays_from_the_trailing_median(
    tmp_path, resources, instance
) -> None:
    # Four days of about 400 rows, then 150 (63% under the median: a warning), then 20 (an error).
    sizes = [400, 410, 390, 405, 150, 20]
    result, keys = load_days(tmp_path, resources, instance, sizes[:4], [ORDERS, *CHECKS])
    assert evaluations(result, "row_volume")[keys[-1]].passed
    stored = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT count(*) FROM sales.orders GROUP BY order_date ORDER BY order_date"),
    )
    trailing = sorted(n for (n,) in stored[:3])
    first = evaluations(result, "row_volume")
    assert first[keys[-1]].metadata["trailing_median"].value == trailing[1]
    warned, _ = load_days(tmp_path, resources, instance, sizes[:5], [ORDERS, *CHECKS])
    low = evaluations(warned, "row_volume")[(FIRST + timedelta(days=4)).isoformat()]
    assert not low.passed and low.severity == dg.AssetCheckSeverity.WARN
    erred, _ = load_days(
        tmp_path, resources, instance, sizes, [ORDERS, daily_order_metrics, *CHECKS]
    )
    lowest = evaluations(erred, "row_volume")[(FIRST + timedelta(days=5)).isoformat()]
    assert not lowest.passed and lowest.severity == dg.AssetCheckSeverity.ERROR
    assert erred.success  # not blocking: the metrics of the unusual day still ran
    assert dg.AssetKey(["sales", "daily_order_metrics"]) in {
        e.asset_key for e in erred.get_asset_materialization_events()
    }


def test_too_little_history_is_no_volume_anomaly(tmp_path, resources, instance) -> None:
    result, keys = load_days(tmp_path, resources, instance, [400, 5], [ORDERS, *CHECKS])
    only = evaluations(result, "row_volume")[keys[-1]]
    assert only.passed and only.metadata["history_partitions"].value == 1


def test_keys_valid_fails_on_a_partition_damaged_outside_the_platform(
    tmp_path, resources, instance
) -> None:
    result, keys = load_days(tmp_path, resources, instance, [200], [ORDERS, *CHECKS])
    assert evaluations(result, "keys_valid")[keys[0]].passed
    with resources["warehouse"].connection() as conn:
        conn.execute(
            sql.SQL("ALTER TABLE sales.orders DROP CONSTRAINT {}").format(
                sql.Identifier("orders_pkey")
            )
        )
        conn.execute("INSERT INTO sales.orders SELECT * FROM sales.orders LIMIT 3")
    selection = dg.AssetSelection.checks(dg.AssetCheckKey(ORDERS.key, "keys_valid"))
    checked = run_checks_alone([ORDERS], CHECKS, selection, keys[0], resources, instance)
    failed = evaluations(checked, "keys_valid")[keys[0]]
    assert not failed.passed and failed.metadata["repeated_key_rows"].value == 6


def test_metrics_reconcile_with_orders_and_a_tampered_day_fails(tmp_path, resources, instance):
    assets = [ORDERS, daily_order_metrics, *CHECKS, reconciles_with_orders]
    result, keys = load_days(tmp_path, resources, instance, [300, 300], assets)
    assert result.success and evaluations(result, "reconciles_with_orders")[keys[-1]].passed
    with resources["warehouse"].connection() as conn:
        conn.execute(
            "UPDATE sales.daily_order_metrics SET revenue = revenue + 0.01"
            " WHERE metric_date = %s AND currency = 'EUR'",
            (date.fromisoformat(keys[-1]),),
        )
    rechecked = run_checks_alone(
        [ORDERS, daily_order_metrics],
        [reconciles_with_orders],
        dg.AssetSelection.checks(reconciles_with_orders),
        keys[-1],
        resources,
        instance,
    )
    failed = evaluations(rechecked, "reconciles_with_orders")[keys[-1]]
    assert not failed.passed and failed.description == "1 currencies disagree: ['EUR']"
    differences = failed.metadata["differences"].value["EUR"]
    orders_revenue = differences["orders"]["revenue"]
    assert differences["metrics"]["revenue"] != orders_revenue
