"""The orders schedule and landing-file sensor, evaluated through Dagster's own APIs."""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from platform_assets.defs.datasets.schedules import DATASET_SCHEDULES
from platform_assets.defs.datasets.sensors import LANDING_SENSORS
from platform_assets.lib.samples.sample_orders import orders_file_name
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.conftest import SAMPLE_DAYS

SCHEDULE = next(s for s in DATASET_SCHEDULES if s.name == "orders_schedule")
SENSOR = next(s for s in LANDING_SENSORS if s.name == "orders_landing_files")


def tick(
    landing: Path, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[dg.RunRequest], str, list]:
    """One evaluation of the landing sensor: its run requests, next cursor and landed days."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": LandingZone(directory=str(landing))}
    )
    result = SENSOR(context)
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or []), result.cursor or "", list(result.asset_events or [])


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
    tmp_path: Path, landing_dir: Path, instance
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(landing_dir, landing)
    days = [day.isoformat() for day in SAMPLE_DAYS]

    first, cursor, observed = tick(landing, instance, None)
    assert first == [] and observed == []  # seen once: not settled yet
    settled, cursor, observed = tick(landing, instance, cursor)
    assert requested_ranges(settled) == [(days[0], days[-1])]  # adjacent days: one range run
    assert [o.partition for o in observed] == days
    assert all(o.tags["dagster/data_version"] for o in observed)
    again, cursor, _ = tick(landing, instance, cursor)
    assert again == []  # unchanged files are never requested twice

    path = landing / "orders" / orders_file_name(SAMPLE_DAYS[1])
    path.write_bytes(path.read_bytes() + b"")  # rewritten, same bytes
    quiet, cursor, _ = tick(landing, instance, tick(landing, instance, cursor)[1])
    assert quiet == []

    with path.open("ab") as late:  # a late correction to the middle day
        late.write(path.read_bytes().splitlines(keepends=True)[1])
    _, cursor, _ = tick(landing, instance, cursor)
    changed, cursor, observed = tick(landing, instance, cursor)
    assert requested_ranges(changed) == [(days[1], days[1])]
    assert [o.partition for o in observed] == [days[1]]
    assert json.loads(cursor)["seen"][path.name]["size"] == path.stat().st_size
    assert tick(landing, instance, cursor)[0] == []
