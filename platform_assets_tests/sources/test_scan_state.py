"""The landing sensor's state in the warehouse, its cursor a pointer: small whatever the landing
zone holds, and a tick whose cursor was never committed (the sensor process killed after the
state was written) loses nothing: the next tick starts again from the committed generation."""

import json
from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.lib.logging import platform_logger
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.scan_state import store_state, stored_state
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.datasets.test_schedules_and_sensors import (
    SENSOR,
    requested_ranges,
    sensor_resources,
    tick,
)
from platform_assets_tests.helpers import fetch_all


def generations(warehouse: Warehouse) -> list[int]:
    query = sql.SQL("SELECT generation FROM platform.landing_scan_state ORDER BY 1")
    return [row[0] for row in fetch_all(warehouse, query)]


def test_a_tick_whose_cursor_was_lost_is_repeated_from_the_committed_state(
    tmp_path: Path, clean_warehouse: Warehouse, instance: dg.DagsterInstance
) -> None:
    zone = sensor_resources(tmp_path, clean_warehouse)
    for n, day in enumerate(SAMPLE_DAYS[:2]):
        write_day(tmp_path / "orders", day, orders=50, seed=n, malformed_share=0)
    _, seen_once, _ = tick(zone, instance, None)
    requested, committed, _ = tick(zone, instance, seen_once)
    assert requested_ranges(requested) == [(SAMPLE_DAYS[0].isoformat(), SAMPLE_DAYS[1].isoformat())]
    assert json.loads(committed) == {
        "generation": 2,
        "unloaded_reported": json.loads(committed)["unloaded_reported"],
    }

    write_day(tmp_path / "orders", SAMPLE_DAYS[2], orders=50, seed=9, malformed_share=0)
    _, lost, _ = tick(zone, instance, committed)  # writes generation 3; its cursor is lost
    assert json.loads(lost)["generation"] == 3 and generations(clean_warehouse) == [2, 3]

    first, cursor, _ = tick(zone, instance, committed)  # Dagster kept the committed cursor
    again, cursor, _ = tick(zone, instance, cursor)
    day = SAMPLE_DAYS[2].isoformat()
    assert requested_ranges(first) + requested_ranges(again) == [(day, day)]  # nothing lost
    assert len(cursor) < 100


def test_generations_before_the_committed_one_are_removed(clean_warehouse: Warehouse) -> None:
    log = platform_logger()
    first = store_state(clean_warehouse, SENSOR.name, None, {"seen": {"a": 1}}, log)
    second = store_state(clean_warehouse, SENSOR.name, {"generation": first}, {"seen": {}}, log)
    assert generations(clean_warehouse) == [first, second]  # the committed one is kept
    third = store_state(clean_warehouse, SENSOR.name, {"generation": second}, {"seen": {}}, log)
    assert generations(clean_warehouse) == [second, third]
    assert stored_state(clean_warehouse, SENSOR.name, {"generation": second}, log) == {"seen": {}}
    old_cursor = {"seen": {"orders_x.csv": {"key": "2026-11-01"}}, "settling": {}}
    assert stored_state(clean_warehouse, SENSOR.name, old_cursor, log) == old_cursor  # as before
    assert stored_state(clean_warehouse, SENSOR.name, {"generation": 99}, log) is None
