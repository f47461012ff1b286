"""Bulk loads: a write that outweighs its table rebuilds the table's indexes, losing nothing."""

from datetime import date

import dagster as dg
import pandas as pd
import psycopg
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

DAY_1, DAY_2 = date(2026, 11, 1), date(2026, 11, 2)
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
METADATA = {"partition_column": "order_date", "primary_key": ["order_id"]}
INDEXES = sql.SQL(
    "SELECT c.relname, c.oid, pg_get_indexdef(c.oid), con.conname FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid"
    " LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid"
    " WHERE i.indrelid = 'io_test.orders'::regclass ORDER BY c.relname"
)


def orders_asset(frame: pd.DataFrame, **metadata: object) -> dg.AssetsDefinition:
    """A daily ``io_test/orders`` asset whose every partition is ``frame``."""

    @dg.asset(key=["io_test", "orders"], partitions_def=daily, metadata={**METADATA, **metadata})
    def _orders() -> pd.DataFrame:
        return frame

    return _orders


def write(
    warehouse: Warehouse, frame: pd.DataFrame, day: date, **kwargs: object
) -> dg.ExecuteInProcessResult:
    """Materialise ``frame`` as partition ``day``, bulk loading from 100 rows on."""
    metadata = kwargs.pop("metadata", {})
    io_manager = PostgresIOManager(warehouse=warehouse, bulk_load_min_rows=100)
    return dg.materialize(
        [orders_asset(frame, **metadata)],
        partition_key=day.isoformat(),
        resources={"io_manager": io_manager},
        **kwargs,
    )


def indexes(warehouse: Warehouse) -> dict[str, tuple[int, str, str | None]]:
    """Each index of io_test.orders: its oid (new when rebuilt), definition and constraint."""
    return {
        name: (oid, definition, constraint)
        for name, oid, definition, constraint in fetch_all(warehouse, INDEXES)
    }


def definitions(found: dict[str, tuple[int, str, str | None]]) -> dict[str, tuple[str, str | None]]:
    return {name: (definition, constraint) for name, (_, definition, constraint) in found.items()}


@pytest.fixture
def orders_table(clean_warehouse: Warehouse) -> Warehouse:
    """io_test.orders with 10 rows of DAY_1, plus a partial index and a unique constraint of
    the user's own that the platform does not know about."""
    assert write(clean_warehouse, daily_orders(DAY_1, 10), DAY_1).success
    with psycopg.connect(clean_warehouse.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE INDEX big_orders ON io_test.orders (amount) WHERE amount > 90")
        conn.execute(
            "ALTER TABLE io_test.orders ADD CONSTRAINT one_amount_per_order"
            " UNIQUE (order_id, amount)"
        )
    return clean_warehouse


def test_a_write_that_outweighs_the_table_rebuilds_every_index_as_it_was(
    orders_table: Warehouse, instance: dg.DagsterInstance
) -> None:
    before = indexes(orders_table)
    assert set(before) == {
        "big_orders",
        "one_amount_per_order",
        "orders_order_date_idx",
        "orders_pkey",
    }

    bulk = write(orders_table, daily_orders(DAY_1, 1000), DAY_1, instance=instance)

    assert bulk.success
    rebuilt = indexes(orders_table)
    assert definitions(rebuilt) == definitions(before)
    assert all(rebuilt[name][0] != before[name][0] for name in before)  # all built anew
    logged = [
        entry.user_message
        for entry in instance.all_logs(bulk.run_id)
        if "indexes_rebuilt_after_bulk_load" in entry.user_message
    ]
    assert len(logged) == 1 and "indexes=4" in logged[0]
    assert row_count(orders_table, "io_test", "orders") == 1000
    fetched = fetch_all(
        orders_table, sql.SQL("SELECT count(*) FROM io_test.orders WHERE amount > 90")
    )
    assert fetched == [(sum(1 for i in range(1000) if i % 97 > 90),)]

    # The next day loads fewer rows than the table holds: its indexes are maintained as it goes.
    assert write(orders_table, daily_orders(DAY_2, 500, first_id=1000), DAY_2).success
    assert indexes(orders_table) == rebuilt
    assert row_count(orders_table, "io_test", "orders") == 1500


def test_a_failed_bulk_load_leaves_rows_and_indexes_as_they_were(orders_table: Warehouse) -> None:
    """Repeated keys fail the primary key's rebuild: everything, the drop included, rolls back."""
    before = indexes(orders_table)
    checksum = table_checksum(orders_table, "io_test", "orders")
    repeated = pd.concat([daily_orders(DAY_1, 500), daily_orders(DAY_1, 500)], ignore_index=True)

    result = write(orders_table, repeated, DAY_1, raise_on_error=False)

    assert not result.success
    cause = result.failure_data_for_node("io_test__orders").error.cause
    assert cause.cls_name == "PartitionWriteError" and "rolled back" in cause.message
    assert indexes(orders_table) == before
    assert table_checksum(orders_table, "io_test", "orders") == checksum


def test_opted_out_tables_keep_their_indexes(orders_table: Warehouse) -> None:
    """``bulk_load_min_rows: None`` in the asset's metadata maintains the indexes row by row."""
    before = indexes(orders_table)
    result = write(
        orders_table, daily_orders(DAY_1, 1000), DAY_1, metadata={"bulk_load_min_rows": None}
    )
    assert result.success
    assert indexes(orders_table) == before
    assert row_count(orders_table, "io_test", "orders") == 1000


def test_an_index_a_foreign_key_relies_on_is_never_dropped(orders_table: Warehouse) -> None:
    """Dropping the primary key would need the foreign key dropped too: no bulk load then."""
    with psycopg.connect(orders_table.conninfo(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE io_test.refunds (refund_id int PRIMARY KEY,"
            " order_id bigint REFERENCES io_test.orders (order_id))"
        )
        conn.execute("INSERT INTO io_test.refunds VALUES (1, 3)")
    before = indexes(orders_table)

    assert write(orders_table, daily_orders(DAY_2, 1000, first_id=1000), DAY_2).success

    assert indexes(orders_table) == before
    assert row_count(orders_table, "io_test", "orders") == 1010


def test_concurrent_bulk_loads_of_one_table_queue_and_both_land(orders_table: Warehouse) -> None:
    """Two bulk writers of different days wait in turn for the table's lock; no deadlock."""
    outcomes = run_queued_behind_a_reader(
        orders_table,
        sql.Identifier("io_test", "orders"),
        [
            lambda day=day, first=first: (
                write(orders_table, daily_orders(day, 1000, first_id=first), day).success
            )
            for day, first in ((DAY_1, 0), (DAY_2, 1000))
        ],
    )

    assert outcomes == [True, True]
    assert row_count(orders_table, "io_test", "orders") == 2000
    duplicates = sql.SQL("SELECT count(*) - count(DISTINCT order_id) FROM io_test.orders")
    assert fetch_all(orders_table, duplicates) == [(0,)]
