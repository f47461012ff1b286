"""Native partitions: one Postgres partition per Dagster partition, replaced by a swap."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import (
    daily_orders,
    fetch_all,
    row_count,
    run_queued_behind_a_reader,
    table_checksum,
)

DAY_1 = date(2026, 11, 1)
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
NATIVE = {
    "partition_column": "order_date",
    "primary_key": ["order_id", "order_date"],
    "indexes": [["customer_id"]],
    "native_partitions": True,
}
PARTITIONS = sql.SQL(
    "SELECT c.relname, c.oid, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
    " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'io_test.orders'::regclass"
    " ORDER BY 3"
)


def orders_asset(frames: dict[date, pd.DataFrame], **metadata: object) -> dg.AssetsDefinition:
    """A daily ``io_test/orders`` asset, natively partitioned, returning its days' frames."""

    @dg.asset(
        key=["io_test", "orders"],
        partitions_def=daily,
        metadata={**NATIVE, **metadata},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _orders(context: dg.AssetExecutionContext) -> pd.DataFrame:
        window = context.partition_time_window
        days = [window.start.date() + timedelta(n) for n in range((window.end - window.start).days)]
        return pd.concat([frames[day] for day in days], ignore_index=True)

    return _orders


def write(
    warehouse: Warehouse, asset: dg.AssetsDefinition, day: date, **kwargs: object
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset],
        partition_key=day.isoformat(),
        resources={"io_manager": PostgresIOManager(warehouse=warehouse)},
        **kwargs,
    )


def partitions(warehouse: Warehouse) -> dict[str, tuple[str, int]]:
    """Each native partition's bound: (its name, its oid)."""
    return {bound: (name, oid) for name, oid, bound in fetch_all(warehouse, PARTITIONS)}


def partition_figures(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, int]]:
    return {
        event.partition: {
            name: event.materialization.metadata[name].value
            for name in ("dagster/partition_row_count", "rows_deleted", "rows_inserted")
        }
        for event in result.get_asset_materialization_events()
    }


def test_a_replace_swaps_in_a_new_partition_and_leaves_the_others(
    clean_warehouse: Warehouse,
) -> None:
    day_2 = DAY_1 + timedelta(1)
    frames = {DAY_1: daily_orders(DAY_1, 5), day_2: daily_orders(day_2, 3, first_id=100)}
    assert write(clean_warehouse, orders_asset(frames), DAY_1).success
    assert write(clean_warehouse, orders_asset(frames), day_2).success
    before = partitions(clean_warehouse)
    assert list(before) == [
        "FOR VALUES FROM ('2026-11-01') TO ('2026-11-02')",
        "FOR VALUES FROM ('2026-11-02') TO ('2026-11-03')",
    ]
    first_day = table_checksum(clean_warehouse, "io_test", "orders", "order_date", DAY_1)

    rerun = write(clean_warehouse, orders_asset(frames), DAY_1)
    assert table_checksum(clean_warehouse, "io_test", "orders", "order_date", DAY_1) == first_day
    frames[DAY_1] = daily_orders(DAY_1, 4, first_id=50)
    replaced = write(clean_warehouse, orders_asset(frames), DAY_1)

    assert rerun.success and replaced.success
    assert partition_figures(replaced) == {
        "2026-11-01": {"dagster/partition_row_count": 4, "rows_deleted": 5, "rows_inserted": 4}
    }
    after = partitions(clean_warehouse)
    first_bound, second_bound = list(after)
    assert after[first_bound][0] == before[first_bound][0]  # same name…
    assert after[first_bound][1] != before[first_bound][1]  # …a new table
    assert after[second_bound] == before[second_bound]  # the other day untouched
    ids = sql.SQL("SELECT order_id FROM io_test.orders WHERE order_date = %s ORDER BY 1")
    assert [row[0] for row in fetch_all(clean_warehouse, ids, (DAY_1,))] == [50, 51, 52, 53]
    assert row_count(clean_warehouse, "io_test", "orders") == 7


def test_the_new_partition_carries_the_key_and_indexes(clean_warehouse: Warehouse) -> None:
    """Built before the swap, so ATTACH adopts them; the key still refuses a repeated row."""
    frames = {DAY_1: daily_orders(DAY_1, 5)}
    assert write(clean_warehouse, orders_asset(frames), DAY_1).success
    # Both attached to the parent's indexes, and named after the partition.
    attached = sql.SQL(
        "SELECT c.relname FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY 1"
    )
    for _round in range(2):  # first load, then a swap
        (name, _), *_ = partitions(clean_warehouse).values()
        assert fetch_all(clean_warehouse, attached, (f"io_test.{name}",)) == [
            (f"{name}_idx0",),
            (f"{name}_pkey",),
        ]
        assert write(clean_warehouse, orders_asset(frames), DAY_1).success

    frames[DAY_1] = pd.concat([daily_orders(DAY_1, 5), daily_orders(DAY_1, 1)], ignore_index=True)
    failed = write(clean_warehouse, orders_asset(frames), DAY_1, raise_on_error=False)
    assert not failed.success
    assert row_count(clean_warehouse, "io_test", "orders") == 5
    leftovers = sql.SQL(
        "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'orders_new_%%'"
    )
    assert fetch_all(clean_warehouse, leftovers) == [(0,)]


def test_a_range_run_swaps_one_partition_per_day(clean_warehouse: Warehouse) -> None:
    days = [DAY_1 + timedelta(n) for n in range(3)]
    frames = {day: daily_orders(day, 2 + n, first_id=10 * n) for n, day in enumerate(days)}
    result = dg.materialize(
        [orders_asset(frames)],
        tags={
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat(),
        },
        resources={"io_manager": PostgresIOManager(warehouse=clean_warehouse)},
    )
    assert result.success
    assert len(partitions(clean_warehouse)) == 3
    assert {
        key: f["dagster/partition_row_count"] for key, f in partition_figures(result).items()
    } == {
        "2026-11-01": 2,
        "2026-11-02": 3,
        "2026-11-03": 4,
    }
    per_day = sql.SQL("SELECT tableoid::regclass::text, count(*) FROM io_test.orders GROUP BY 1")
    assert sorted(count for _, count in fetch_all(clean_warehouse, per_day)) == [2, 3, 4]


def test_upsert_and_append_create_the_partition_they_need(clean_warehouse: Warehouse) -> None:
    frames = {DAY_1: daily_orders(DAY_1, 3)}
    upsert = write(clean_warehouse, orders_asset(frames, write_mode="upsert"), DAY_1)
    again = write(clean_warehouse, orders_asset(frames, write_mode="upsert"), DAY_1)
    day_2 = DAY_1 + timedelta(1)
    appended = write(
        clean_warehouse, orders_asset({day_2: daily_orders(day_2, 2)}, write_mode="append"), day_2
    )

    assert upsert.success and again.success and appended.success
    unchanged = again.get_asset_materialization_events()[0].materialization.metadata
    assert unchanged["rows_unchanged"].value == 3 and unchanged["rows_updated"].value == 0
    assert len(partitions(clean_warehouse)) == 2
    # The key includes the day: the same order_id on another day is another row.
    assert row_count(clean_warehouse, "io_test", "orders") == 5


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"primary_key": ["order_id"]}, "must include the partition column"),
        ({"write_mode": "replace_table"}, "replace_table is for unpartitioned assets"),
    ],
)
def test_layouts_postgres_cannot_enforce_are_refused(
    clean_warehouse: Warehouse, metadata: dict, message: str
) -> None:
    asset = orders_asset({DAY_1: daily_orders(DAY_1, 3)}, **metadata)
    result = write(clean_warehouse, asset, DAY_1, raise_on_error=False)
    assert not result.success
    assert message in str(result.failure_data_for_node("io_test__orders").error)


def test_an_existing_plain_table_is_not_converted(clean_warehouse: Warehouse) -> None:
    frames = {DAY_1: daily_orders(DAY_1, 3)}
    assert write(clean_warehouse, orders_asset(frames, native_partitions=False), DAY_1).success
    result = write(clean_warehouse, orders_asset(frames), DAY_1, raise_on_error=False)
    assert not result.success
    assert "exists as a plain table" in str(result.failure_data_for_node("io_test__orders").error)
    assert row_count(clean_warehouse, "io_test", "orders") == 3


def test_static_partitions_are_list_partitions(clean_warehouse: Warehouse) -> None:
    regions = dg.StaticPartitionsDefinition(["eu", "us"])

    @dg.asset(
        key=["io_test", "sales"],
        partitions_def=regions,
        metadata={"partition_column": "region", "native_partitions": True},
    )
    def sales(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"region": [context.partition_key] * 2, "amount": [1.0, 2.0]})

    resources = {"io_manager": PostgresIOManager(warehouse=clean_warehouse)}
    for region in ("eu", "us", "eu"):
        assert dg.materialize([sales], partition_key=region, resources=resources).success
    bounds = sql.SQL(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'io_test.sales'::regclass"
        " ORDER BY 1"
    )
    assert fetch_all(clean_warehouse, bounds) == [
        ("FOR VALUES IN ('eu')",),
        ("FOR VALUES IN ('us')",),
    ]
    assert row_count(clean_warehouse, "io_test", "sales") == 4


def test_concurrent_swaps_of_two_days_queue_and_both_land(clean_warehouse: Warehouse) -> None:
    """Each writer loads its day on its own, then waits for the parent's lock; no deadlock."""
    days = [DAY_1, DAY_1 + timedelta(1)]
    frames = {day: daily_orders(day, 5, first_id=10 * n) for n, day in enumerate(days)}
    for day in days:
        assert write(clean_warehouse, orders_asset(frames), day).success
    outcomes = run_queued_behind_a_reader(
        clean_warehouse,
        sql.Identifier("io_test", "orders"),
        [lambda day=day: write(clean_warehouse, orders_asset(frames), day).success for day in days],
    )

    assert outcomes == [True, True]
    assert len(partitions(clean_warehouse)) == 2
    assert row_count(clean_warehouse, "io_test", "orders") == 10


def test_downstream_reads_its_day_from_the_native_table(clean_warehouse: Warehouse) -> None:
    days = [DAY_1, DAY_1 + timedelta(1)]
    frames = {day: daily_orders(day, 3, first_id=10 * n) for n, day in enumerate(days)}
    upstream = orders_asset(frames)
    seen: list[pd.DataFrame] = []

    @dg.asset(
        key=["io_test", "order_totals"],
        partitions_def=daily,
        ins={"orders": dg.AssetIn(key=["io_test", "orders"])},
    )
    def order_totals(orders: pd.DataFrame) -> None:
        seen.append(orders)

    resources = {"io_manager": PostgresIOManager(warehouse=clean_warehouse)}
    for day in days:
        assert write(clean_warehouse, upstream, day).success
    result = dg.materialize(
        [upstream, order_totals],
        selection=[order_totals.key],
        partition_key=days[1].isoformat(),
        resources=resources,
    )

    assert result.success
    pd.testing.assert_frame_equal(seen[0], frames[days[1]])
