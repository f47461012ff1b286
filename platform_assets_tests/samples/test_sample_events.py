"""The shipped shop_events dataset (Parquet, Berlin days, a derived partition column, a dedupe
key) on the sample exports: loaded for real, every event accounted for."""

from collections import Counter
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow.parquet as pq
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.defs.platform.assets import build_dead_letters_asset
from platform_assets.lib.dead_letters.observation import dead_letters_key
from platform_assets.lib.samples.sample_events import generate_events_day, write_events_day
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.helpers import fetch_all

SPEC = SPECS_BY_NAME["shop_events"]
DAY = date(2026, 3, 29)  # Berlin moves its clocks on: a day of 23 hours


def test_same_seed_and_day_give_the_same_export(tmp_path: Path) -> None:
    first = pq.read_table(write_events_day(tmp_path / "a", DAY, events=200, seed=3))
    second = pq.read_table(write_events_day(tmp_path / "b", DAY, events=200, seed=3))
    other = pq.read_table(write_events_day(tmp_path / "c", DAY, events=200, seed=4))
    assert first.equals(second) and not first.equals(other)


def test_a_berlin_day_of_events_loads_with_every_event_accounted_for(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    rows = generate_events_day(DAY, 2000, 11, duplicate_share=0.02, malformed_share=0.01)
    write_events_day(tmp_path / "shop_events", DAY, 2000, 11, 0.02, 0.01)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    result = dg.materialize(
        [build_dataset_asset(SPEC), *build_dataset_checks(SPEC)],
        partition_key=DAY.isoformat(),
        resources=resources,
        instance=instance,
    )

    assert result.success
    # Validation comes first: each copy of a broken row is refused for its fault, and only a
    # good row delivered again is refused as a repeat of the dedupe key.
    broken = [r["event_type"] == "unknown" or r["customer_id"] == 0 for r in rows]
    good_ids = Counter(r["event_id"] for r, bad in zip(rows, broken, strict=True) if not bad)
    refused = sum(broken) + sum(n - 1 for n in good_ids.values())
    assert refused > sum(broken) > 0  # the sample plants both kinds
    metadata = result.asset_materializations_for_node("web__shop_events")[0].metadata
    assert metadata["rows_read"].value == len(rows)
    assert metadata["rows_dead_lettered"].value == refused
    assert all(
        e.passed for e in result.get_asset_check_evaluations() if e.check_name != "row_volume"
    )
    warehouse = resources["warehouse"]
    stored = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT count(*), count(DISTINCT event_id), min(occurred_at), max(occurred_at),"
            " min(event_date), max(event_date), min(occurred_local)"
            " FROM web.shop_events"
        ),
    )
    count, distinct, earliest, latest, first_day, last_day, first_local = stored[0]
    berlin = ZoneInfo("Europe/Berlin")
    assert count == distinct == metadata["rows_loaded"].value
    assert earliest >= datetime.combine(DAY, time.min, tzinfo=berlin)  # 23:00 UTC the day before
    assert earliest.astimezone(UTC).date() == date(2026, 3, 28)
    assert latest < datetime.combine(date(2026, 3, 30), time.min, tzinfo=berlin)
    assert first_day == last_day == DAY
    assert first_local == earliest.astimezone(berlin).replace(tzinfo=None)


def test_each_dataset_s_dead_letters_are_observed_on_its_own_asset(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """Orders, then events: the events' observation does not hide the orders' letters (one
    asset for both did), and each asset's counts are its own dataset's. Observing an asset on
    demand (the UI's Observe button) records the same figures as the load did."""
    write_day(tmp_path / "orders", DAY, orders=400, seed=5, malformed_share=0.05)
    write_events_day(tmp_path / "shop_events", DAY, 500, 11, 0.02, 0.01)
    landed = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    for name in ("orders", "shop_events"):
        result = dg.materialize(
            [build_dataset_asset(SPECS_BY_NAME[name])],
            partition_key=DAY.isoformat(),
            resources=landed,
            instance=instance,
        )
        assert result.success
    warehouse = resources["warehouse"]
    for name, key in (("orders", "sales/orders"), ("shop_events", "web/shop_events")):
        (latest,) = instance.fetch_observations(dead_letters_key(key), limit=1).records
        metadata = latest.asset_observation.metadata
        ((stored,),) = fetch_all(
            warehouse,
            sql.SQL(
                "SELECT count(*) FROM platform.dead_letter_records"
                " WHERE asset_key = %s AND status = 'new'"
            ),
            (key,),
        )
        assert metadata["dataset"].value == key
        assert metadata["new"].value == stored > 0, name
        assert metadata["partitions_with_letters"].value == 1
        assert metadata["partitions_not_listed"].value == 0

    for name, key in (("orders", "sales/orders"), ("shop_events", "web/shop_events")):
        observing = dg.Definitions(  # what the UI's Observe button launches
            assets=[build_dead_letters_asset(SPECS_BY_NAME[name])],
            jobs=[dg.define_asset_job("observe", selection=[dead_letters_key(key)])],
            resources=resources,
        )
        observed = observing.resolve_job_def("observe").execute_in_process(instance=instance)
        assert observed.success
        on_demand, by_load = instance.fetch_observations(dead_letters_key(key), limit=2).records
        assert on_demand.run_id == observed.run_id != by_load.run_id
        assert on_demand.asset_observation.metadata == by_load.asset_observation.metadata
