"""Migrations planned from a spec for tables with a composite key or none: a scale widening on a
table keyed by three columns is planned, applied in key batches, verified, and resumed after the
run is killed mid-backfill; on a keyless table it goes in batches of pages. Materialised, killed
and migrated for real."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from platform_assets.defs.migrations.spec_changes import plan_from_specs
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.migrations.batches import keyset_batch, page_batch
from platform_assets.lib.migrations.model import Check
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.test_spec_changes import DAY, column_types, valued_readings
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import run_migrations
from platform_assets_tests.migrations.test_migration_job import (
    cause_message,
    guard_metadata,
    killed_after_batches,
)
from platform_assets_tests.migrations.test_spec_migrations import load, migrate

READINGS = 1_000
BATCH = 25
THREE_COLUMN_KEY = ["taken_on", "sensor", "reading_id"]


def scaled(scale: int, primary_key: list[str]) -> DatasetSpec:
    """Readings with decimal values of ``scale``, keyed by ``primary_key``."""
    return valued_readings({"type": "decimal", "precision": 14, "scale": scale}, primary_key)


def write_readings(resources: dict) -> None:
    """The day's readings: three sensors, a thousand readings, decimals of two places, and ids
    that repeat across sensors (only the three columns together are unique)."""
    lines = [
        f"{n // 3},{DAY},{'abc'[n % 3]},{(n * 37 % 10_000) / 100:.2f}" for n in range(READINGS)
    ]
    (Path(resources["landing"].directory) / "readings" / f"readings_{DAY}.csv").write_text(
        "reading_id,taken_on,sensor,value\n" + "\n".join(lines) + "\n"
    )


def stored(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL("SELECT sensor, reading_id, value FROM io_test.readings ORDER BY 1, 2"),
    )


def ledger_position(warehouse: Warehouse) -> dict:
    (position,) = fetch_all(
        warehouse, sql.SQL("SELECT backfill_position FROM platform.migration_ledger")
    )[0]
    return position


def step_metadata(result: dg.ExecuteInProcessResult, step: str) -> dict:
    """The output metadata of one step of a migrate run."""
    return next(
        e for e in result.all_events if e.step_key == step and e.is_successful_output
    ).step_output_data.metadata


def test_a_scale_widening_on_a_three_column_key_is_planned_applied_and_resumed_after_a_kill(
    readings: dict,
) -> None:
    warehouse = readings["warehouse"]
    write_readings(readings)
    assert load(scaled(2, THREE_COLUMN_KEY), readings).success
    before = stored(warehouse)
    assert len(before) == READINGS
    wider = scaled(4, THREE_COLUMN_KEY)

    shown = guard_metadata(migrate(warehouse, wider))
    (planned,) = shown["planned_from_specs"].value
    assert "value from numeric(14,2) to numeric(14,4)" in planned["description"]
    assert shown["unplanned_spec_changes"].value == []
    # Batches by the whole key, compared as one row value.
    assert '(t."taken_on", t."sensor", t."reading_id") >' in shown["sql"].value

    killed_at = killed_after_batches(
        warehouse,
        "migrations=[], dataset_specs=[scaled(4, THREE_COLUMN_KEY)], confirm=True,"
        f" batch_size={BATCH}, pause_ms=200",
        4,
        "from platform_assets_tests.migrations.test_keys_of_any_arity import THREE_COLUMN_KEY,"
        " scaled",
    )
    assert 4 <= killed_at < READINGS // BATCH
    position = ledger_position(warehouse)
    assert set(position) == set(THREE_COLUMN_KEY)  # the last key reached, all three columns
    (done,) = fetch_all(
        warehouse,
        sql.SQL("SELECT count(*) FROM io_test.readings WHERE value__new IS NOT NULL"),
    )[0]
    assert done == killed_at * BATCH  # committed batches only, nothing half done

    resumed = migrate(warehouse, wider, confirm=True, batch_size=BATCH, pause_ms=0)

    assert resumed.success
    baseline = step_metadata(resumed, "baseline")
    assert baseline["resumed_after"].value == position
    backfilled = step_metadata(resumed, "backfill")
    # One pass in key order from the position did the rest: no sweep found rows passed over.
    assert backfilled["sweeps"].value == 0
    assert backfilled["rows"].value == READINGS - killed_at * BATCH
    (batches, rows, status) = fetch_all(
        warehouse,
        sql.SQL("SELECT backfill_batches, backfill_rows, status FROM platform.migration_ledger"),
    )[0]
    # No batch done twice: every row once, in as many batches as the rows need.
    assert (batches, rows, status) == (READINGS // BATCH, READINGS, "applied")
    assert column_types(readings)["value"] == "numeric(14,4)"
    assert stored(warehouse) == before  # every value the same number, four places now
    assert {str(value).split(".")[1] for _, _, value in stored(warehouse)} <= {
        f"{n:02d}00" for n in range(100)
    }

    # The contract step drops value__old, backed up by the three key columns; then all is clean.
    assert migrate(warehouse, wider, confirm=True).success
    assert "value__old" not in column_types(readings)
    assert guard_metadata(migrate(warehouse, wider))["planned_from_specs"].value == []
    assert load(wider, readings).success
    assert stored(warehouse) == before


def test_a_keyless_table_s_type_change_goes_in_batches_of_pages(readings: dict) -> None:
    warehouse = readings["warehouse"]
    write_readings(readings)
    assert load(scaled(2, []), readings).success
    before = stored(warehouse)
    wider = scaled(4, [])

    shown = guard_metadata(migrate(warehouse, wider))
    assert "WHERE t.ctid >= format(" in shown["sql"].value  # a TID range of pages per batch
    applied = migrate(warehouse, wider, confirm=True, batch_size=BATCH)

    assert applied.success
    backfilled = step_metadata(applied, "backfill")
    assert (backfilled["rows"].value, backfilled["sweeps"].value) == (READINGS, 0)
    assert backfilled["batches"].value > 1
    assert column_types(readings)["value"] == "numeric(14,4)"
    assert stored(warehouse) == before
    assert all(isinstance(value, Decimal) for _, _, value in stored(warehouse))
    # The retired column of a keyless table: dropped once its rows agreeing on every other column
    # agree on it (they do: it is a function of the new column). A rollback first puts every value
    # back, verified against the baseline; then the drop applies.
    with adbc.connect(warehouse.conninfo()) as conn:
        (contract,) = plan_from_specs(conn, [wider]).migrations
    assert "drop value__old" in contract.description
    failing = replace(contract, validate=[Check("fails on purpose", "SELECT false")])
    rolled_back = run_migrations(warehouse, migrations=[failing], confirm=True)
    assert "rolled back; schema and data verified equal to the baseline" in cause_message(
        rolled_back
    )
    assert "value__old" in column_types(readings)
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        conn.execute("DELETE FROM platform.migration_ledger")
        conn.execute("DROP SCHEMA migration_backup CASCADE")
    assert migrate(warehouse, wider, confirm=True).success
    assert "value__old" not in column_types(readings)
    assert stored(warehouse) == before


def test_each_batch_reads_only_its_own_rows_whatever_the_table_s_size(
    clean_warehouse: Warehouse,
) -> None:
    """The plan of a batch in the middle of a 300,000-row table: a range of the key's index from
    the position (or a TID range of pages for a keyless table), never a scan and sort of the whole
    table, so a batch costs the same on the thousandth day as on the first."""
    assignments, pending = sql.SQL("w = t.v"), sql.SQL("t.w IS NULL")
    with psycopg.connect(clean_warehouse.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS batches")
        for table, key in (("keyed", "PRIMARY KEY (d, s, i)"), ("keyless", "CHECK (true)")):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE batches.{} (d date, s text, i bigint, v numeric(14,2),"
                    " w numeric(14,4), {})"
                ).format(sql.Identifier(table), sql.SQL(key))
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO batches.{} SELECT date '2026-01-01' + n % 100, 's' || n % 7, n,"
                    " n / 100.0 FROM generate_series(1, 300000) AS n"
                ).format(sql.Identifier(table))
            )
            conn.execute(sql.SQL("ANALYZE batches.{}").format(sql.Identifier(table)))
        by_key = keyset_batch("batches", "keyed", ("d", "s", "i"), assignments, pending)
        by_page = page_batch("batches", "keyless", assignments, pending)
        plans = {}
        for name, statement, after in (
            ("keyed", by_key, {"d": "2026-02-01", "s": "s3", "i": 150000}),
            ("keyless", by_page, {"page": 500}),
        ):
            explained = conn.execute(
                "EXPLAIN " + statement, {"after": Jsonb(after), "limit": 1000}, prepare=False
            ).fetchall()
            plans[name] = "\n".join(line for (line,) in explained)
        conn.execute("DROP SCHEMA batches CASCADE")
    assert "Index Cond: (ROW(d, s, i) > ROW(" in plans["keyed"], plans["keyed"]
    assert "Seq Scan" not in plans["keyed"]
    assert "Tid Range Scan on keyless" in plans["keyless"], plans["keyless"]
    assert "Seq Scan" not in plans["keyless"]
