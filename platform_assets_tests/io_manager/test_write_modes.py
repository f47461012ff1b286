"""Upsert, append and replace_table through real materialisations, checked in the database."""

import dagster as dg
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all, row_count, table_checksum

CUSTOMERS_METADATA = {"write_mode": "upsert", "primary_key": ["customer_id"]}


def customers_asset(frame: pd.DataFrame, **metadata: object) -> dg.AssetsDefinition:
    """An unpartitioned ``io_test/customers`` asset returning ``frame``."""

    @dg.asset(key=["io_test", "customers"], metadata={**CUSTOMERS_METADATA, **metadata})
    def customers() -> pd.DataFrame:
        return frame

    return customers


def customers(ids: range, name_prefix: str = "name") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array(list(ids), dtype="Int64"),
            "name": pd.Series([f"{name_prefix}-{i}" for i in ids], dtype="str"),
            "email": pd.Series(
                [None if i % 3 == 0 else f"c{i}@example.com" for i in ids], dtype="str"
            ),
        }
    )


def write(asset: dg.AssetsDefinition, warehouse: Warehouse, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset], resources={"io_manager": PostgresIOManager(warehouse=warehouse)}, **kwargs
    )


def figures(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    names = ("rows_inserted", "rows_updated", "rows_unchanged", "dagster/row_count")
    return {name: metadata[name].value for name in names}


def updated_tuples(warehouse: Warehouse) -> int:
    """Rows updated in io_test.customers so far, from the statistics collector."""
    with warehouse.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
    with warehouse.connection() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT n_tup_upd FROM pg_stat_user_tables"
            " WHERE schemaname = 'io_test' AND relname = 'customers'"
        ).fetchone()[0]


def test_upsert_counts_and_leaves_unchanged_rows_alone(clean_warehouse: Warehouse) -> None:
    first = write(customers_asset(customers(range(10))), clean_warehouse)
    assert figures(first) == {
        "rows_inserted": 10,
        "rows_updated": 0,
        "rows_unchanged": 0,
        "dagster/row_count": 10,
    }
    before = updated_tuples(clean_warehouse)

    # 5 unchanged (0-4), 3 changed (5-7), 2 new (10-11); rows 8 and 9 are not in the frame.
    frame = pd.concat(
        [customers(range(5)), customers(range(5, 8), "renamed"), customers(range(10, 12))]
    )
    second = write(customers_asset(frame), clean_warehouse)

    assert figures(second) == {
        "rows_inserted": 2,
        "rows_updated": 3,
        "rows_unchanged": 5,
        "dagster/row_count": 12,
    }
    assert updated_tuples(clean_warehouse) - before == 3
    names = dict(
        fetch_all(clean_warehouse, sql.SQL("SELECT customer_id, name FROM io_test.customers"))
    )
    assert names[5] == "renamed-5" and names[8] == "name-8" and names[11] == "name-11"


def test_upsert_stores_missing_strings_as_null_never_nan(clean_warehouse: Warehouse) -> None:
    assert write(customers_asset(customers(range(6))), clean_warehouse).success
    stored = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT count(*) FILTER (WHERE email IS NULL),"
            " count(*) FILTER (WHERE email IN ('NaN', 'nan', 'None', '<NA>'))"
            " FROM io_test.customers"
        ),
    )
    assert stored == [(2, 0)]


def test_upsert_twice_is_idempotent(clean_warehouse: Warehouse) -> None:
    asset = customers_asset(customers(range(20)))
    assert write(asset, clean_warehouse).success
    checksum = table_checksum(clean_warehouse, "io_test", "customers")
    again = write(asset, clean_warehouse)
    assert figures(again)["rows_unchanged"] == 20
    assert table_checksum(clean_warehouse, "io_test", "customers") == checksum


def test_upsert_refuses_repeated_keys_in_one_frame(clean_warehouse: Warehouse) -> None:
    frame = pd.concat([customers(range(3)), customers(range(2, 4), "other")])
    result = write(customers_asset(frame), clean_warehouse, raise_on_error=False)
    cause = result.failure_data_for_node("io_test__customers").error.cause
    assert cause.cls_name == "DuplicateKeyError" and "1 rows repeat a primary key" in cause.message


def test_upsert_without_primary_key_is_a_clear_error(clean_warehouse: Warehouse) -> None:
    result = write(
        customers_asset(customers(range(3)), primary_key=None),
        clean_warehouse,
        raise_on_error=False,
    )
    cause = result.failure_data_for_node("io_test__customers").error.cause
    assert "upsert needs metadata={'primary_key'" in cause.message


def test_append_adds_rows_every_time(clean_warehouse: Warehouse) -> None:
    """Append is the one mode that is not idempotent by design: each run adds its rows."""
    asset = customers_asset(customers(range(4)), write_mode="append", primary_key=None)
    assert figures(write(asset, clean_warehouse))["dagster/row_count"] == 4
    assert figures(write(asset, clean_warehouse))["dagster/row_count"] == 8


def test_replace_table_swaps_whole_table_and_is_idempotent(clean_warehouse: Warehouse) -> None:
    replace = {"write_mode": "replace_table"}
    assert write(customers_asset(customers(range(10)), **replace), clean_warehouse).success
    shrunk = write(customers_asset(customers(range(3)), **replace), clean_warehouse)
    metadata = shrunk.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_deleted"].value == 10 and metadata["rows_inserted"].value == 3
    checksum = table_checksum(clean_warehouse, "io_test", "customers")
    assert write(customers_asset(customers(range(3)), **replace), clean_warehouse).success
    assert row_count(clean_warehouse, "io_test", "customers") == 3
    assert table_checksum(clean_warehouse, "io_test", "customers") == checksum
    tables = fetch_all(
        clean_warehouse,
        sql.SQL("SELECT tablename FROM pg_tables WHERE schemaname = 'io_test' ORDER BY 1"),
    )
    assert tables == [("customers",)]
    keys = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT count(*) FROM pg_index WHERE indisprimary"
            " AND indrelid = 'io_test.customers'::regclass"
        ),
    )
    assert keys == [(1,)]


def test_replace_table_keeps_every_index_under_its_own_name(clean_warehouse: Warehouse) -> None:
    """The new table is loaded bare, then given the old one's key and indexes, names included."""
    replace = {"write_mode": "replace_table"}
    assert write(customers_asset(customers(range(10)), **replace), clean_warehouse).success
    with psycopg.connect(clean_warehouse.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE INDEX customer_emails ON io_test.customers (email) WHERE email > ''")
    definitions = sql.SQL(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = 'io_test.customers'::regclass ORDER BY 1"
    )
    before = fetch_all(clean_warehouse, definitions)
    assert len(before) == 2  # the primary key and the user's own

    for rows in (range(20), range(5)):
        assert write(customers_asset(customers(rows), **replace), clean_warehouse).success
        assert fetch_all(clean_warehouse, definitions) == before
    assert row_count(clean_warehouse, "io_test", "customers") == 5


def test_failed_replace_table_keeps_the_old_table(clean_warehouse: Warehouse) -> None:
    replace = {"write_mode": "replace_table"}
    assert write(customers_asset(customers(range(5)), **replace), clean_warehouse).success
    checksum = table_checksum(clean_warehouse, "io_test", "customers")
    broken = customers(range(5, 7))
    broken.loc[1, "customer_id"] = pd.NA  # the primary key refuses it during the COPY
    result = write(customers_asset(broken, **replace), clean_warehouse, raise_on_error=False)
    assert result.failure_data_for_node("io_test__customers").error.cause.cls_name == (
        "PartitionWriteError"
    )
    assert table_checksum(clean_warehouse, "io_test", "customers") == checksum


@pytest.mark.parametrize("mode", ["replace_partition", "upsert"])
def test_empty_unpartitioned_frame(clean_warehouse: Warehouse, mode: str) -> None:
    """replace_partition empties the table; upsert of nothing changes nothing."""
    assert write(customers_asset(customers(range(4)), write_mode=mode), clean_warehouse).success
    empty = customers(range(0))
    result = write(customers_asset(empty, write_mode=mode), clean_warehouse)
    expected = 0 if mode == "replace_partition" else 4
    assert figures(result)["dagster/row_count"] == expected
    assert row_count(clean_warehouse, "io_test", "customers") == expected
