"""Dead letters and accounting commit with the good rows: one partition, one transaction."""

import csv
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from psycopg import sql

from platform_assets.defs.sales.partitions import daily_partitions
from platform_assets.lib.dead_letters.export import export_dead_letters
from platform_assets.lib.ingestion.result import (
    DeadLetter,
    IngestedFrame,
    dead_letter_table,
    no_dead_letters,
)
from platform_assets.lib.samples.sample_orders import orders_file_name
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = SAMPLE_DAYS[0]
PIPELINE = [ORDERS]


def materialize(assets: list, resources: dict, instance: dg.DagsterInstance, **kwargs):
    return dg.materialize(
        assets, partition_key=DAY.isoformat(), resources=resources, instance=instance, **kwargs
    )


def dead_letters(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_ref, payload, status, stage, error_class, error_message, run_id"
            " FROM platform.dead_letter_records WHERE asset_key = 'sales/orders'"
            " ORDER BY id"
        ),
    )


def test_rejected_rows_are_dead_lettered_with_their_raw_payload(
    resources, instance, landing_dir: Path
) -> None:
    warehouse: Warehouse = resources["warehouse"]
    result = materialize(PIPELINE, resources, instance)
    metadata = result.asset_materializations_for_node("sales__orders")[0].metadata
    letters = dead_letters(warehouse)

    assert len(letters) == metadata["rows_dead_lettered"].value > 0
    with (landing_dir / "orders" / orders_file_name(DAY)).open(newline="") as handle:
        by_line = {line: row for line, row in enumerate(csv.DictReader(handle), start=2)}
    for source_ref, payload, status, stage, error_class, message, run_id in letters:
        line = int(source_ref.rsplit(":", 1)[1])
        assert source_ref.startswith(orders_file_name(DAY))
        assert payload == by_line[line]
        assert (status, run_id) == ("new", result.run_id)
        assert (stage, error_class) in {
            ("validate", "ValidationError"),
            ("validate", "DuplicateKey"),
            ("transform", "TransformError"),
        }
        assert message
    accounting = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered FROM platform.ingestion_accounting"
            " WHERE asset_key = 'sales/orders' AND partition_key = %s"
        ),
        (DAY.isoformat(),),
    )
    assert accounting == [(len(by_line), len(by_line) - len(letters), len(letters))]


def test_rerun_replaces_unresolved_dead_letters_and_keeps_resolved(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    materialize(PIPELINE, resources, instance)
    first = dead_letters(warehouse)
    with warehouse.connection() as conn:
        conn.execute(
            "UPDATE platform.dead_letter_records SET status = 'resolved'"
            " WHERE id = (SELECT min(id) FROM platform.dead_letter_records)"
        )

    rerun = materialize(PIPELINE, resources, instance)

    after = dead_letters(warehouse)
    unresolved = [letter for letter in after if letter[2] == "new"]
    assert len(unresolved) == len(first)
    assert {letter[6] for letter in unresolved} == {rerun.run_id}
    assert [letter[2] for letter in after].count("resolved") == 1


def test_a_failed_write_rolls_back_the_dead_letters_too(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    materialize(PIPELINE, resources, instance)
    before = dead_letters(warehouse)

    @dg.asset(
        key=["sales", "orders"],
        partitions_def=daily_partitions,
        metadata={"partition_column": "order_date", "primary_key": ["order_id"]},
    )
    def broken_orders(context: dg.AssetExecutionContext) -> IngestedFrame:
        """One good-looking row without an order_id (the key refuses it), one dead letter."""
        rows = pd.DataFrame({"order_id": pd.array([None], dtype="Int64"), "order_date": [DAY]})
        letters = dead_letter_table(
            [DeadLetter(context.partition_key, "validate", "test:1", {"raw": "x"}, "Planted", "-")]
        )
        return IngestedFrame(rows, letters, rows_read={context.partition_key: 2})

    failed = materialize([broken_orders], resources, instance, raise_on_error=False)

    assert not failed.success
    assert dead_letters(warehouse) == before


def test_rows_that_do_not_add_up_are_refused(resources, instance) -> None:
    @dg.asset(
        key=["sales", "lossy"],
        partitions_def=daily_partitions,
        metadata={"partition_column": "day"},
    )
    def lossy(context: dg.AssetExecutionContext) -> IngestedFrame:
        """Claims 5 rows read but accounts for 3."""
        rows = pd.DataFrame({"day": [DAY] * 3})
        return IngestedFrame(rows, no_dead_letters(), rows_read={context.partition_key: 5})

    result = materialize([lossy], resources, instance, raise_on_error=False)
    cause = result.failure_data_for_node("sales__lossy").error.cause
    assert cause.cls_name == "AccountingError" and "5 rows read but 3 loaded" in cause.message
    # A first write creates its table in its own transaction: the refusal left no table behind.
    exists = sql.SQL("SELECT to_regclass('sales.lossy') IS NOT NULL")
    assert fetch_all(resources["warehouse"], exists) == [(False,)]


def test_dead_letters_export_to_parquet(resources, instance, tmp_path: Path) -> None:
    warehouse: Warehouse = resources["warehouse"]
    materialize(PIPELINE, resources, instance)
    path = tmp_path / "failures" / "orders.parquet"

    written = export_dead_letters(warehouse, path, asset_key="sales/orders", status="new")

    exported = pq.read_table(path).to_pylist()
    assert written == len(exported) == len(dead_letters(warehouse)) > 0
    assert sorted(row["source_ref"] for row in exported) == sorted(
        ref for ref, *_ in dead_letters(warehouse)
    )
    assert all(json.loads(row["payload"]) for row in exported)
    assert export_dead_letters(warehouse, tmp_path / "none.parquet", status="resolved") == 0


def test_ragged_lines_become_parse_stage_dead_letters(
    resources, instance, landing_dir: Path, tmp_path: Path
) -> None:
    warehouse: Warehouse = resources["warehouse"]
    source = landing_dir / "orders" / orders_file_name(DAY)
    damaged = tmp_path / "orders" / orders_file_name(DAY)
    damaged.parent.mkdir(parents=True)
    lines = source.read_text().splitlines()
    lines.insert(3, "only,three,fields")
    damaged.write_text("\n".join(lines) + "\n")
    with_damage = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    result = materialize(PIPELINE, with_damage, instance)

    metadata = result.asset_materializations_for_node("sales__orders")[0].metadata
    read, loaded, dead = (
        metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered")
    )
    assert read == len(lines) - 1 == loaded + dead
    parsed = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_ref, payload, stage, error_message FROM platform.dead_letter_records"
            " WHERE asset_key = 'sales/orders' AND stage = 'parse'"
        ),
    )
    assert parsed == [
        (
            f"{orders_file_name(DAY)}:4",
            {"line": "only,three,fields"},
            "parse",
            "expected 10 fields, found 3",
        )
    ]
