"""The error budget: a partition whose rows are mostly dead-lettered fails its blocking check and
stops downstream, and says how many rows were rejected, which rules they broke most, and why."""

from datetime import date
from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.defs.sales.assets import daily_order_metrics
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.helpers import check_evaluation, fetch_all
from platform_assets_tests.sales.test_every_line_accounted import CHECKS, set_field
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = date(2026, 11, 13)


def test_a_partition_past_its_error_budget_fails_and_blocks_downstream(
    tmp_path: Path, resources: dict, instance: dg.DagsterInstance
) -> None:
    path = write_day(tmp_path / "orders", DAY, orders=60, seed=2, malformed_share=0.0)
    lines = path.read_bytes().count(b"\n") - 1
    for line in range(2, lines + 2):
        set_field(path, line, 7, b"517.0")  # pandas' way of writing an integer quantity

    result = dg.materialize(
        [ORDERS, daily_order_metrics, *CHECKS],
        partition_key=DAY.isoformat(),
        resources={**resources, "landing": LandingZone(directory=str(tmp_path))},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    ratio = check_evaluation(result, "dead_letter_ratio")
    assert not ratio.passed and ratio.severity == dg.AssetCheckSeverity.ERROR
    assert ratio.description == f"{lines} of {lines} rows dead-lettered (100.0%)"
    assert ratio.metadata["top_rules_broken"].value == {"quantity:type": lines}
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["sales", "daily_order_metrics"]) not in materialized
    messages = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT DISTINCT error_message FROM platform.dead_letter_records"),
    )
    assert messages == [
        (
            "quantity: '517.0' has a fraction, and the column is integer"
            " (accept_integral_decimals: true in the spec would take it)",
        )
    ]
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "top_rules_broken" in entry.user_message
    ]
    assert len(warnings) == 1 and f"rows={lines}" in warnings[0]
    assert "top_rules_broken={'quantity:type': " in warnings[0]


def test_a_few_bad_rows_warn_and_let_downstream_run(resources, instance, landing_dir) -> None:
    result = dg.materialize(
        [ORDERS, daily_order_metrics, *CHECKS],
        partition_key=SAMPLE_DAYS[0].isoformat(),
        resources=resources,
        instance=instance,
    )

    ratio = check_evaluation(result, "dead_letter_ratio")
    assert result.success and ratio.passed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["sales", "daily_order_metrics"]) in materialized
