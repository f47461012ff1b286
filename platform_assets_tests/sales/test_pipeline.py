"""The sales pipeline materialised for real against Postgres: contents, idempotency, failures."""

import csv
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import dataset_assets
from platform_assets.defs.sales import assets as sales_assets
from platform_assets.defs.sales.partitions import daily_partitions
from platform_assets.lib.samples.sample_orders import orders_file_name
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all, row_count, table_checksum

ORDERS = next(a for a in dataset_assets if a.key == dg.AssetKey(["sales", "orders"]))
ALL_ASSETS = [ORDERS, sales_assets.daily_order_metrics]
DAY = SAMPLE_DAYS[0]
OTHER_DAY = SAMPLE_DAYS[1]


def materialize_day(
    day: date, resources: dict, instance: dg.DagsterInstance, assets: list | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    """Materialise ``day``'s partition of the sales assets."""
    return dg.materialize(
        assets or ALL_ASSETS,
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        **kwargs,
    )


def fetch_description(warehouse: Warehouse) -> list:
    """Column descriptions of sales.orders, in table order."""
    with warehouse.connection() as conn:
        return list(conn.execute("SELECT * FROM sales.orders LIMIT 0").description)


def landing_lines(landing_dir: Path, day: date) -> list[dict[str, str]]:
    """The landing file's data rows, read independently of the platform with the csv module."""
    with (landing_dir / "orders" / orders_file_name(day)).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_partition_lands_expected_rows(resources, instance, landing_dir: Path) -> None:
    result = materialize_day(DAY, resources, instance)
    assert result.success
    warehouse: Warehouse = resources["warehouse"]
    lines = landing_lines(landing_dir, DAY)

    # Every line of the file is either an order or a dead letter: the counts add up, and every
    # line not dead-lettered is in the table.
    orders = fetch_all(warehouse, sql.SQL("SELECT order_id FROM sales.orders"))
    refs = fetch_all(warehouse, sql.SQL("SELECT source_ref FROM platform.dead_letter_records"))
    dead_lines = {int(ref.rsplit(":", 1)[1]) for (ref,) in refs}
    assert len(dead_lines) == len(refs) and len(refs) + len(orders) == len(lines)
    loaded_ids = {order_id for (order_id,) in orders}
    for number, line in enumerate(lines, start=2):
        if number not in dead_lines:
            assert int(line["order_id"]) in loaded_ids

    metadata = result.asset_materializations_for_node("sales__orders")[0].metadata
    read, loaded, dead = (
        metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered")
    )
    assert read == len(lines) and loaded + dead == read and dead > 0
    assert row_count(warehouse, "sales", "orders") == loaded
    ids = fetch_all(warehouse, sql.SQL("SELECT DISTINCT order_date FROM sales.orders"))
    assert ids == [(DAY,)]

    # The metrics must agree with an independent SQL aggregation over the loaded orders.
    expected = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT order_date, currency, count(*),"
            " sum(amount) FILTER (WHERE status NOT IN ('cancelled', 'returned')),"
            " count(DISTINCT customer_id)"
            " FROM sales.orders GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    actual = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT metric_date, currency, order_count, revenue, distinct_customers"
            " FROM sales.daily_order_metrics ORDER BY 1, 2"
        ),
    )
    assert actual == expected and len(actual) == 3


def test_rematerialising_is_idempotent_and_leaves_other_partitions(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    assert materialize_day(DAY, resources, instance).success
    assert materialize_day(OTHER_DAY, resources, instance).success
    before = {t: table_checksum(warehouse, "sales", t) for t in ("orders", "daily_order_metrics")}
    other_before = table_checksum(warehouse, "sales", "orders", "order_date", OTHER_DAY)

    again = materialize_day(DAY, resources, instance)

    assert again.success
    assert {t: table_checksum(warehouse, "sales", t) for t in before} == before
    assert table_checksum(warehouse, "sales", "orders", "order_date", OTHER_DAY) == other_before
    replaced = again.asset_materializations_for_node("sales__orders")[0].metadata
    assert replaced["rows_deleted"].value == replaced["rows_inserted"].value > 0


def test_failed_copy_leaves_previous_partition_rows(resources, instance) -> None:
    """A value COPY rejects (a null primary key) arrives after the DELETE ran: all rolled back."""
    warehouse: Warehouse = resources["warehouse"]
    assert materialize_day(DAY, resources, instance).success
    before = table_checksum(warehouse, "sales", "orders")

    @dg.asset(
        key=["sales", "orders"],
        partitions_def=daily_partitions,
        metadata={"partition_column": "order_date", "primary_key": ["order_id"]},
    )
    def broken_orders() -> pd.DataFrame:
        """Orders whose second row has no order_id, which the table's primary key refuses."""
        good = fetch_all(warehouse, sql.SQL("SELECT * FROM sales.orders LIMIT 1"))[0]
        columns = [c.name for c in fetch_description(warehouse)]
        frame = pd.DataFrame([good, good], columns=columns)
        frame["order_id"] = pd.array([None, 1], dtype="Int64")
        return frame

    result = materialize_day(DAY, resources, instance, [broken_orders], raise_on_error=False)
    assert not result.success
    cause = result.failure_data_for_node("sales__orders").error.cause
    assert cause.cls_name == "PartitionWriteError"
    assert "rolled back" in cause.message and "previous rows are unchanged" in cause.message
    assert "order_id" in cause.message
    assert table_checksum(warehouse, "sales", "orders") == before


def test_missing_landing_file_fails_clearly(resources, instance) -> None:
    result = materialize_day(date(2026, 6, 1), resources, instance, raise_on_error=False)
    assert not result.success
    error = result.failure_data_for_node("sales__orders").error
    assert error.cls_name == "Failure"
    assert "no landing file for 2026-06-01 matches" in error.message
    assert "orders_2026-06-01*.csv" in error.message
    # A missing file is not worth retrying: the asset's RetryPolicy does not run again.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_structured_logs_reach_the_run_log(resources, instance) -> None:
    result = materialize_day(DAY, resources, instance)
    lines = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "partition_written" in entry.user_message
    ]
    assert len(lines) == 2
    for line in lines:
        assert f"run_id={result.run_id}" in line
        assert f"partition={DAY.isoformat()}" in line
        assert "asset_key=sales/" in line


@pytest.mark.parametrize("asset", ALL_ASSETS, ids=lambda a: a.key.to_user_string())
def test_assets_are_documented_and_partitioned(asset: dg.AssetsDefinition) -> None:
    spec = next(iter(asset.specs))
    assert spec.description and spec.group_name == "sales" and spec.kinds
    assert asset.partitions_def.get_partition_keys() == daily_partitions.get_partition_keys()
    assert "partition_column" in spec.metadata
