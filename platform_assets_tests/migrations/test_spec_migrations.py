"""Migrations planned from a dataset's spec: a load refused by a table holding rows, the migrate
job's dry run showing the migration planned from the difference, confirming applying it with the
data verified, and the load going through afterwards. Materialised and migrated for real."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import psycopg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.migrations.spec_changes import plan_from_specs
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.migrations.model import Check, Migration
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.test_spec_changes import DAY, column_types, valued_readings
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import run_migrations
from platform_assets_tests.migrations.test_migration_job import cause_message, guard_metadata

WHOLE = valued_readings({"type": "integer"}, ["reading_id"])
DECIMAL = valued_readings({"type": "decimal", "precision": 10, "scale": 2}, ["reading_id"])


def load(spec: DatasetSpec, resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_dataset_asset(spec)], partition_key=DAY, resources=resources, raise_on_error=False
    )


def values(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse, sql.SQL("SELECT reading_id, value FROM io_test.readings ORDER BY reading_id")
    )


def migrate(warehouse: Warehouse, spec: DatasetSpec, **config: object) -> dg.ExecuteInProcessResult:
    return run_migrations(warehouse, migrations=[], dataset_specs=[spec], **config)


def test_a_type_change_is_planned_shown_applied_verified_and_then_loads(readings: dict) -> None:
    warehouse = readings["warehouse"]
    assert load(WHOLE, readings).success
    refused = load(DECIMAL, readings)
    assert not refused.success  # the table holds rows: the load names the migration it needs
    assert "the migrate job's dry run plans it" in str(refused.all_events)

    dry = migrate(warehouse, DECIMAL)
    shown = guard_metadata(dry)
    assert shown["migration"].value.startswith("spec_readings_")
    (planned,) = shown["planned_from_specs"].value
    assert "value from bigint to numeric(10,2)" in planned["description"]
    assert '"value__new" numeric(10,2)' in shown["sql"].value
    assert shown["lint_findings"].value == []
    assert column_types(readings)["value"] == "bigint"  # a dry run changes nothing

    applied = migrate(warehouse, DECIMAL, confirm=True)
    assert applied.success
    assert column_types(readings)["value"] == "numeric(10,2)"
    assert values(warehouse) == [(1, Decimal("5.00")), (2, Decimal("-7.00")), (3, None)]
    assert load(DECIMAL, readings).success  # the spec's load goes through now
    assert values(warehouse) == [(1, Decimal("5.00")), (2, Decimal("-7.00")), (3, None)]

    # The swap left the old column: the next plan drops it, backed up first; then nothing is left.
    contract = guard_metadata(migrate(warehouse, DECIMAL))
    assert "drop value__old (bigint)" in contract["planned_from_specs"].value[0]["description"]
    assert migrate(warehouse, DECIMAL, confirm=True).success
    assert "value__old" not in column_types(readings)
    assert guard_metadata(migrate(warehouse, DECIMAL))["planned_from_specs"].value == []
    ledger = fetch_all(warehouse, sql.SQL("SELECT status FROM platform.migration_ledger"))
    assert ledger == [("applied",), ("applied",)]
    assert load(DECIMAL, readings).success


def test_a_conversion_that_would_change_a_value_is_refused(readings: dict) -> None:
    warehouse = readings["warehouse"]
    precise = valued_readings({"type": "decimal", "precision": 10, "scale": 3}, ["reading_id"])
    (Path(readings["landing"].directory) / "readings" / f"readings_{DAY}.csv").write_text(
        f"reading_id,taken_on,sensor,value\n1,{DAY},a,5.125\n2,{DAY},b,0.5\n"
    )
    assert load(precise, readings).success
    rounded = valued_readings({"type": "decimal", "precision": 10, "scale": 2}, ["reading_id"])

    refused = migrate(warehouse, rounded, confirm=True)

    assert not refused.success
    assert "converts to numeric(10,2) and back unchanged" in cause_message(refused)
    assert column_types(readings)["value"] == "numeric(10,3)"
    assert values(warehouse) == [(1, Decimal("5.125")), (2, Decimal("0.500"))]


@pytest.mark.parametrize("keyed_before", [True, False], ids=["another key", "a key added"])
def test_a_key_change_is_planned_refused_on_repeats_and_applied(
    readings: dict, keyed_before: bool
) -> None:
    warehouse = readings["warehouse"]
    assert load(WHOLE if keyed_before else removed_key("keyless"), readings).success
    rekeyed = valued_readings({"type": "integer"}, ["sensor", "reading_id"])
    day = Path(readings["landing"].directory) / "readings" / f"readings_{DAY}.csv"
    refused = load(rekeyed, readings)
    assert not refused.success
    assert "primary_key ['sensor', 'reading_id'] is declared" in refusal(refused)

    shown = guard_metadata(migrate(warehouse, rekeyed))
    (planned,) = shown["planned_from_specs"].value
    assert "key the table by ['sensor', 'reading_id']" in planned["description"]
    assert shown["unplanned_spec_changes"].value == []
    assert shown["lint_findings"].value == []
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in shown["sql"].value
    assert primary_key(warehouse) == (["reading_id"] if keyed_before else [])

    if not keyed_before:  # a repeated row: the new key would not be unique, so it is refused
        with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
            conn.execute("INSERT INTO io_test.readings SELECT * FROM io_test.readings LIMIT 1")
        repeated = migrate(warehouse, rekeyed, confirm=True)
        assert not repeated.success
        assert "no two rows share ['sensor', 'reading_id']" in cause_message(repeated)
        with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
            conn.execute(
                "DELETE FROM io_test.readings WHERE ctid = (SELECT max(ctid) FROM io_test.readings)"
            )

    assert migrate(warehouse, rekeyed, confirm=True).success
    assert primary_key(warehouse) == ["sensor", "reading_id"]
    assert guard_metadata(migrate(warehouse, rekeyed))["planned_from_specs"].value == []
    day.write_text(day.read_text() + f"1,{DAY},b,8\n")  # reading 1 again, of another sensor
    assert load(rekeyed, readings).success
    assert len(values(warehouse)) == 4


def removed_key(shape: str) -> DatasetSpec:
    """The readings without their primary key: keyless, or with the key as a dedupe key."""
    if shape == "keyless":
        return valued_readings({"type": "integer"}, [])
    return valued_readings({"type": "integer"}, []).model_copy(
        update={"dedupe_key": ["reading_id"]}
    )


@pytest.mark.parametrize("shape", ["keyless", "dedupe key"])
def test_a_removed_key_is_refused_by_the_load_then_planned_and_dropped(
    readings: dict, shape: str
) -> None:
    warehouse = readings["warehouse"]
    assert load(WHOLE, readings).success
    spec = removed_key(shape)
    refused = load(spec, readings)
    assert not refused.success  # the table would go on refusing repeats with a raw error
    assert "primary key ['reading_id'] but none is declared" in refusal(refused)

    shown = guard_metadata(migrate(warehouse, spec))
    (planned,) = shown["planned_from_specs"].value
    assert "drop the primary key ['reading_id']" in planned["description"]
    assert shown["unplanned_spec_changes"].value == []
    assert shown["lint_findings"].value == []
    assert primary_key(warehouse) == ["reading_id"]  # a dry run changes nothing

    assert migrate(warehouse, spec, confirm=True).success
    assert primary_key(warehouse) == []
    assert guard_metadata(migrate(warehouse, spec))["planned_from_specs"].value == []
    day = Path(readings["landing"].directory) / "readings" / f"readings_{DAY}.csv"
    day.write_text(day.read_text() + f"1,{DAY},a,5\n")  # a repeated row
    loaded = load(spec, readings)
    assert loaded.success  # the keyless or dedupe behaviour, no constraint error
    stored = fetch_all(warehouse, sql.SQL("SELECT count(*) FROM io_test.readings"))[0][0]
    assert stored == (4 if shape == "keyless" else 3)


def refusal(result: dg.ExecuteInProcessResult) -> str:
    """The messages of the failed step's error and its causes."""
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def primary_key(warehouse: Warehouse) -> list[str]:
    return [
        name
        for (name,) in fetch_all(
            warehouse,
            sql.SQL(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey)"
                " WHERE i.indrelid = 'io_test.readings'::regclass AND i.indisprimary"
                " ORDER BY array_position(i.indkey::int2[], a.attnum)"
            ),
        )
    ]


@pytest.mark.parametrize("change", ["dropped", "replaced"])
def test_a_dropped_or_replaced_key_is_restored_by_the_rollback(readings: dict, change: str) -> None:
    warehouse = readings["warehouse"]
    assert load(WHOLE, readings).success
    spec = (
        removed_key("keyless")
        if change == "dropped"
        else valued_readings({"type": "integer"}, ["sensor", "reading_id"])
    )
    (planned,) = plan_from_spec(warehouse, spec)
    failing = replace(planned, validate=[Check("fails", "SELECT false")])
    result = run_migrations(warehouse, migrations=[failing], confirm=True)
    assert not result.success
    assert "rolled back; schema and data verified equal to the baseline" in cause_message(result)
    assert primary_key(warehouse) == ["reading_id"]
    indexes = fetch_all(
        warehouse,
        sql.SQL("SELECT indexname FROM pg_indexes WHERE tablename = 'readings'"),
    )
    assert not [name for (name,) in indexes if "sensor" in name]  # the new key's index is gone


def plan_from_spec(warehouse: Warehouse, spec: DatasetSpec) -> list[Migration]:
    with adbc.connect(warehouse.conninfo()) as conn:
        return plan_from_specs(conn, [spec]).migrations
