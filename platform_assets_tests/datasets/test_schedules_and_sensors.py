"""The orders schedule and landing-file sensor, evaluated through Dagster's own APIs."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from platform_assets.defs.datasets.schedules import DATASET_SCHEDULES
from platform_assets.defs.datasets.sensors import LANDING_SENSORS
from platform_assets.lib.logging import platform_logger
from platform_assets.lib.samples.sample_orders import orders_file_name
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.sources.scan_state import stored_state
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS

SCHEDULE = next(s for s in DATASET_SCHEDULES if s.name == "orders_schedule")
SENSOR = next(s for s in LANDING_SENSORS if s.name == "orders_landing_files")


def sensor_resources(landing: Path, warehouse: Warehouse) -> dict:
    """What the landing sensor reads: the landing zone, and the warehouse keeping its state."""
    return {"landing": LandingZone(directory=str(landing)), "warehouse": warehouse}


def evaluate(zone: dict, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    """One evaluation of the landing sensor with the resources ``zone``."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=zone) as context:
        return SENSOR(context)


def tick(
    zone: dict, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[dg.RunRequest], str, list]:
    """One evaluation of the landing sensor: its run requests, next cursor and landed days."""
    result = evaluate(zone, instance, cursor)
    assert isinstance(result, dg.SensorResult)
    landed = [e for e in result.asset_events or [] if isinstance(e, dg.AssetMaterialization)]
    return list(result.run_requests or []), result.cursor or "", landed


def unloaded_reports(zone: dict, instance: dg.DagsterInstance, cursor: str | None) -> tuple:
    """One evaluation: what it says of the files it sees but does not load, and its cursor."""
    result = evaluate(zone, instance, cursor)
    reports = [e for e in result.asset_events or [] if isinstance(e, dg.AssetObservation)]
    return reports, result.cursor, result.skip_reason


def requested_ranges(requests: list[dg.RunRequest]) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in requests
    ]


def test_the_schedule_requests_the_day_before_its_tick_in_its_time_zone(instance) -> None:
    at = datetime(2026, 11, 3, 6, 30, tzinfo=UTC)
    request = SCHEDULE(dg.build_schedule_context(instance=instance, scheduled_execution_time=at))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-11-02" and request.run_key == "orders:2026-11-02"
    assert SCHEDULE.execution_timezone == "UTC" and SCHEDULE.cron_schedule == "30 6 * * *"
    assert SCHEDULE.job_name == "load_orders"
    assert (
        SCHEDULE.default_status == dg.DefaultScheduleStatus.STOPPED
    )  # orders.yaml: running: false
    assert SENSOR.default_status == dg.DefaultSensorStatus.RUNNING


def test_the_landing_sensor_requests_each_settled_file_once(
    tmp_path: Path, landing_dir: Path, instance, clean_warehouse: Warehouse
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(landing_dir, landing)
    days = [day.isoformat() for day in SAMPLE_DAYS]
    zone = sensor_resources(landing, clean_warehouse)

    first, cursor, observed = tick(zone, instance, None)
    assert first == [] and observed == []  # seen once: not settled yet
    settled, cursor, observed = tick(zone, instance, cursor)
    assert requested_ranges(settled) == [(days[0], days[-1])]  # adjacent days: one range run
    assert [o.partition for o in observed] == days
    assert all(o.tags["dagster/data_version"] for o in observed)
    again, cursor, _ = tick(zone, instance, cursor)
    assert again == []  # unchanged files are never requested twice

    path = landing / "orders" / orders_file_name(SAMPLE_DAYS[1])
    path.write_bytes(path.read_bytes() + b"")  # rewritten, same bytes
    quiet, cursor, _ = tick(zone, instance, tick(zone, instance, cursor)[1])
    assert quiet == []

    with path.open("ab") as late:  # a late correction to the middle day
        late.write(path.read_bytes().splitlines(keepends=True)[1])
    _, cursor, _ = tick(zone, instance, cursor)
    changed, cursor, observed = tick(zone, instance, cursor)
    assert requested_ranges(changed) == [(days[1], days[1])]
    assert [o.partition for o in observed] == [days[1]]
    state = stored_state(clean_warehouse, SENSOR.name, json.loads(cursor), platform_logger())
    assert state["seen"][path.name]["size"] == path.stat().st_size  # kept in the warehouse
    assert len(cursor) < 100  # the cursor only points at it
    assert tick(zone, instance, cursor)[0] == []


def test_a_file_that_waits_says_why_on_the_landing_asset_and_in_the_tick(
    tmp_path: Path, instance, clean_warehouse: Warehouse
) -> None:
    """A file for a day that is not a partition yet (tomorrow's), and one matching the pattern
    without naming a day: each tick says so, and the landing asset is told whenever it changes."""
    orders = tmp_path / "landing" / "orders"
    orders.mkdir(parents=True)
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    (orders / f"orders_{tomorrow}.csv").write_text("order_id\n1\n")
    (orders / "orders_latest.csv").write_text("order_id\n1\n")
    zone = sensor_resources(tmp_path / "landing", clean_warehouse)

    (report,), cursor, skip = unloaded_reports(zone, instance, None)
    why = report.metadata["why"].value
    assert report.metadata["files_not_loaded"].value == 2
    assert f"{tomorrow} is not a partition (yet)" in why[f"orders_{tomorrow}.csv"]
    assert "names no %Y-%m-%d key" in why["orders_latest.csv"]
    assert f"orders_{tomorrow}.csv waits: {tomorrow} is not a partition" in skip.skip_message
    again, cursor, skip = unloaded_reports(zone, instance, cursor)
    assert again == [] and "waits" in skip.skip_message  # told once; every tick still says it
    (orders / "orders_latest.csv").unlink()
    (report,), _, _ = unloaded_reports(zone, instance, cursor)
    assert report.metadata["files_not_loaded"].value == 1
