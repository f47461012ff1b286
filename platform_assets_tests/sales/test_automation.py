"""The metrics follow their orders by themselves: a replay re-runs exactly the replayed day's
metrics, and a day whose orders fail a blocking check is not followed."""

from datetime import UTC, date, datetime

import dagster as dg
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor

from platform_assets.defs.sales.assets import daily_order_metrics
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.ingestion.test_replay import CHECKS, fixable_letter, replay
from platform_assets_tests.sales.test_error_budget import DAY as OVER_BUDGET_DAY
from platform_assets_tests.sales.test_every_line_accounted import set_field
from platform_assets_tests.sales.test_pipeline import ORDERS

METRICS = daily_order_metrics.key
# A fixed evaluation time: the outcome must not depend on the day the tests run.
EVALUATED_AT = datetime(2026, 11, 20, tzinfo=UTC)


def requested(
    resources: dict, instance: dg.DagsterInstance, cursor: AssetDaemonCursor | None = None
) -> tuple[set[str], AssetDaemonCursor]:
    """The metric partitions automation requests now, and the cursor for the next evaluation."""
    result = dg.evaluate_automation_conditions(
        defs=dg.Definitions(
            assets=[ORDERS, daily_order_metrics], asset_checks=CHECKS, resources=resources
        ),
        instance=instance,
        cursor=cursor,
        evaluation_time=EVALUATED_AT,
    )
    return {str(key) for key in result.get_requested_partitions(METRICS)}, result.cursor


def load(day: date, assets: list, resources: dict, instance: dg.DagsterInstance) -> bool:
    """Materialise ``day`` of ``assets`` with the orders' checks; whether the run succeeded."""
    return dg.materialize(
        [*assets, *CHECKS],
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    ).success


def test_a_replay_reruns_exactly_the_replayed_days_metrics(resources, instance) -> None:
    for day in SAMPLE_DAYS[:2]:
        assert load(day, [ORDERS, daily_order_metrics], resources, instance)
    nothing, cursor = requested(resources, instance)
    assert nothing == set()  # everything is up to date

    letter_id, patched = fixable_letter(resources["warehouse"])
    replayed = replay(
        resources,
        instance,
        patches=[{"dead_letter_id": letter_id, "payload": patched, "note": "q", "author": "a"}],
    )
    assert replayed.success
    followed, cursor = requested(resources, instance, cursor)
    assert followed == {SAMPLE_DAYS[0].isoformat()}  # only the day that gained rows
    assert requested(resources, instance, cursor)[0] == set()  # requested once


def test_orders_failing_a_blocking_check_are_not_followed(tmp_path, resources, instance) -> None:
    _, cursor = requested(resources, instance)
    assert load(SAMPLE_DAYS[2], [ORDERS], resources, instance)  # a good day, orders only
    path = write_day(tmp_path / "orders", OVER_BUDGET_DAY, orders=60, seed=2, malformed_share=0)
    for line in range(2, path.read_bytes().count(b"\n") + 1):
        set_field(path, line, 7, b"517.0")  # every row dead-lettered: past the error budget
    over_budget = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    assert not load(OVER_BUDGET_DAY, [ORDERS], over_budget, instance)
    followed, _ = requested(resources, instance, cursor)
    assert followed == {SAMPLE_DAYS[2].isoformat()}
