"""Truthful nullability: a dataset's required and key columns are NOT NULL in its table and in
each load's column schema; a column made required on a loaded table is planned by the migrate job
(refused while a null remains); a column no longer required loses its NOT NULL with the next load.
Materialised and migrated for real."""

from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.datasets.test_spec_changes import DAY
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.test_migration_job import cause_message, guard_metadata
from platform_assets_tests.migrations.test_spec_migrations import load, migrate


def readings_with(value_required: bool, sensor_required: bool = True) -> DatasetSpec:
    """Readings keyed by reading_id, their value and sensor required or not."""
    return readings_spec(
        [
            {"name": "reading_id", "type": "integer", "required": True},
            {"name": "taken_on", "type": "date", "required": True},
            {"name": "sensor", "type": "text", "required": sensor_required},
            {"name": "value", "type": "integer", "required": value_required},
        ],
        primary_key=["reading_id"],
        partition_column="taken_on",
        fail_dead_letter_ratio=1,
    )


def not_null(warehouse: Warehouse) -> dict[str, bool]:
    return dict(
        fetch_all(
            warehouse,
            sql.SQL(
                "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid ="
                " 'io_test.readings'::regclass AND attnum > 0 AND NOT attisdropped"
            ),
        )
    )


def stored_nullability(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Each column's ``nullable`` in the materialisation's column schema."""
    (materialization,) = result.asset_materializations_for_node("io_test__readings")
    schema = materialization.metadata["dagster/column_schema"].value
    return {column.name: column.constraints.nullable for column in schema.columns}


def test_required_and_key_columns_are_not_null_in_the_table_and_the_ui(readings: dict) -> None:
    loaded = load(readings_with(value_required=False), readings)
    assert loaded.success
    expected = {"reading_id": True, "taken_on": True, "sensor": True, "value": False}
    assert {k: v for k, v in not_null(readings["warehouse"]).items() if k in expected} == expected
    shown = stored_nullability(loaded)
    assert {name: not shown[name] for name in expected} == expected
    assert shown["_row_hash"] is True


def test_a_column_made_required_is_planned_refused_while_a_null_remains_then_applied(
    readings: dict,
) -> None:
    warehouse = readings["warehouse"]
    assert load(readings_with(value_required=False), readings).success  # reading 3 has no value
    required = readings_with(value_required=True)

    shown = guard_metadata(migrate(warehouse, required))
    (planned,) = shown["planned_from_specs"].value
    assert "value NOT NULL, as its spec declares it required" in planned["description"]
    assert shown["lint_findings"].value == []
    refused = migrate(warehouse, required, confirm=True)
    assert not refused.success
    assert "no value is null" in cause_message(refused)
    assert not not_null(warehouse)["value"]

    # The required spec's load dead-letters reading 3 and replaces the day: no null is left.
    assert load(required, readings).success
    assert migrate(warehouse, required, confirm=True).success
    assert not_null(warehouse)["value"]
    assert guard_metadata(migrate(warehouse, required))["planned_from_specs"].value == []


def test_a_column_no_longer_required_loses_its_not_null_with_the_next_load(readings: dict) -> None:
    warehouse = readings["warehouse"]
    assert load(readings_with(value_required=False), readings).success
    assert not_null(warehouse)["sensor"]
    day = Path(readings["landing"].directory) / "readings" / f"readings_{DAY}.csv"
    day.write_text(day.read_text() + f"4,{DAY},,9\n")  # a reading without its sensor

    relaxed = load(readings_with(value_required=False, sensor_required=False), readings)

    assert relaxed.success
    assert not not_null(warehouse)["sensor"]
    assert stored_nullability(relaxed)["sensor"] is True
    assert fetch_all(
        warehouse, sql.SQL("SELECT sensor, value FROM io_test.readings WHERE reading_id = 4")
    ) == [(None, 9)]
