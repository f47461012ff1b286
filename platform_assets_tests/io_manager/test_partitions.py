"""Partitions written and read exactly: ranges, static, dynamic, multi, time zones, versions."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
from psycopg import sql

from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all

BERLIN = ZoneInfo("Europe/Berlin")
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2026-11-01",
    "dagster/asset_partition_range_end": "2026-11-05",
}


def daily_rows(day: date) -> pd.DataFrame:
    """``day.day`` rows for ``day``, so every partition has a different count."""
    return pd.DataFrame({"day": [day] * day.day, "n": pd.array(range(day.day), dtype="Int64")})


def resources(warehouse: Warehouse) -> dict:
    return {"io_manager": PostgresIOManager(warehouse=warehouse)}


def counts_by(warehouse: Warehouse, query: str) -> list[tuple]:
    return fetch_all(warehouse, sql.SQL(query))


def test_single_run_range_writes_each_partition_with_its_own_figures(
    clean_warehouse: Warehouse,
) -> None:
    @dg.asset(
        key=["io_test", "daily"],
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={"partition_column": "day"},
    )
    def ranged(context: dg.AssetExecutionContext) -> pd.DataFrame:
        window = context.partition_time_window
        days = (window.end - window.start).days
        return pd.concat([daily_rows(window.start.date() + timedelta(d)) for d in range(days)])

    result = dg.materialize([ranged], resources=resources(clean_warehouse), tags=RANGE_TAGS)

    events = result.get_asset_materialization_events()
    per_partition = {
        e.materialization.partition: e.materialization.metadata["dagster/partition_row_count"].value
        for e in events
    }
    assert per_partition == {f"2026-11-0{d}": d for d in range(1, 6)}
    # dagster/row_count too describes each day alone (the whole table would cost a scan).
    assert {
        e.materialization.partition: e.materialization.metadata["dagster/row_count"].value
        for e in events
    } == per_partition
    stored = counts_by(
        clean_warehouse, "SELECT day, count(*) FROM io_test.daily GROUP BY 1 ORDER BY 1"
    )
    assert stored == [(date(2026, 11, d), d) for d in range(1, 6)]

    again = dg.materialize([ranged], resources=resources(clean_warehouse), tags=RANGE_TAGS)
    deleted = {
        e.materialization.partition: e.materialization.metadata["rows_deleted"].value
        for e in again.get_asset_materialization_events()
    }
    assert deleted == per_partition


def test_multi_partitions_write_exactly_their_key(clean_warehouse: Warehouse) -> None:
    multi = dg.MultiPartitionsDefinition(
        {"date": daily, "region": dg.StaticPartitionsDefinition(["eu", "us"])}
    )

    @dg.asset(
        key=["io_test", "sales"],
        partitions_def=multi,
        metadata={"partition_columns": {"date": "day", "region": "region"}},
    )
    def regional(context: dg.AssetExecutionContext) -> pd.DataFrame:
        key = context.partition_key.keys_by_dimension
        day = date.fromisoformat(key["date"])
        size = 2 if key["region"] == "eu" else 3
        return pd.DataFrame({"day": [day] * size, "region": [key["region"]] * size})

    for key in ("2026-11-01|eu", "2026-11-01|us", "2026-11-02|eu", "2026-11-01|eu"):
        date_key, region = key.split("|")
        partition = dg.MultiPartitionKey({"date": date_key, "region": region})
        result = dg.materialize(
            [regional], partition_key=partition, resources=resources(clean_warehouse)
        )
        assert result.success
    rewritten = result.get_asset_materialization_events()[0].materialization.metadata
    assert rewritten["rows_deleted"].value == 2 and rewritten["rows_inserted"].value == 2

    stored = counts_by(
        clean_warehouse,
        "SELECT day, region, count(*) FROM io_test.sales GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert stored == [
        (date(2026, 11, 1), "eu", 2),
        (date(2026, 11, 1), "us", 3),
        (date(2026, 11, 2), "eu", 2),
    ]


def test_static_and_dynamic_keys_never_widen(clean_warehouse: Warehouse) -> None:
    regions = dg.StaticPartitionsDefinition(["eu", "us", "apac"])
    tenants = dg.DynamicPartitionsDefinition(name="tenants")

    @dg.asset(
        key=["io_test", "by_region"],
        partitions_def=regions,
        metadata={"partition_column": "region"},
    )
    def by_region(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"region": [context.partition_key] * 2, "v": [1, 2]})

    @dg.asset(
        key=["io_test", "by_tenant"],
        partitions_def=tenants,
        metadata={"partition_column": "tenant"},
    )
    def by_tenant(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"tenant": [context.partition_key], "v": [1]})

    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenants", ["acme", "globex"])
        for asset, keys in (
            (by_region, ["eu", "us", "eu"]),
            (by_tenant, ["acme", "globex", "acme"]),
        ):
            for key in keys:
                assert dg.materialize(
                    [asset],
                    partition_key=key,
                    resources=resources(clean_warehouse),
                    instance=instance,
                ).success

    assert counts_by(
        clean_warehouse, "SELECT region, count(*) FROM io_test.by_region GROUP BY 1 ORDER BY 1"
    ) == [
        ("eu", 2),
        ("us", 2),
    ]
    assert counts_by(
        clean_warehouse, "SELECT tenant, count(*) FROM io_test.by_tenant GROUP BY 1 ORDER BY 1"
    ) == [
        ("acme", 1),
        ("globex", 1),
    ]


def test_timestamptz_partitions_follow_the_partition_time_zone_across_dst(
    clean_warehouse: Warehouse,
) -> None:
    """Berlin's 2026-10-25 lasts 25 hours; its rows are exactly those in that local day."""
    berlin_days = dg.DailyPartitionsDefinition(start_date="2026-10-01", timezone="Europe/Berlin")
    local = [
        datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN),
        datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN),  # the first of the two 02:30s
        datetime(2026, 10, 25, 23, 59, tzinfo=BERLIN),
    ]

    def events(extra: list[datetime]) -> dg.AssetsDefinition:
        @dg.asset(
            key=["io_test", "clicks"],
            partitions_def=berlin_days,
            metadata={"partition_column": "at"},
        )
        def clicks() -> pd.DataFrame:
            return pd.DataFrame({"at": pd.Series(local + extra).dt.tz_convert("UTC")})

        return clicks

    ok = dg.materialize(
        [events([])], partition_key="2026-10-25", resources=resources(clean_warehouse)
    )
    assert ok.success
    stored = counts_by(clean_warehouse, "SELECT min(at), max(at), count(*) FROM io_test.clicks")
    assert stored == [(local[0], local[-1], 3)]

    next_day = datetime(2026, 10, 26, 0, 5, tzinfo=BERLIN)
    refused = dg.materialize(
        [events([next_day])],
        partition_key="2026-10-25",
        resources=resources(clean_warehouse),
        raise_on_error=False,
    )
    cause = refused.failure_data_for_node("io_test__clicks").error.cause
    assert cause.cls_name == "RowsOutsidePartitionError" and "1 of 4 rows" in cause.message


def test_unchanged_partition_keeps_its_data_version(clean_warehouse: Warehouse) -> None:
    content = {"value": 1}

    @dg.asset(
        key=["io_test", "versioned"], partitions_def=daily, metadata={"partition_column": "day"}
    )
    def versioned() -> pd.DataFrame:
        return pd.DataFrame({"day": [date(2026, 11, 1)] * 2, "value": [content["value"], 7]})

    def version() -> str:
        result = dg.materialize(
            [versioned], partition_key="2026-11-01", resources=resources(clean_warehouse)
        )
        return result.get_asset_materialization_events()[0].materialization.tags[
            "dagster/data_version"
        ]

    first, second = version(), version()
    content["value"] = 2
    third = version()
    assert first == second != third


def test_jsonb_decimals_and_long_strings_round_trip(clean_warehouse: Warehouse) -> None:
    from decimal import Decimal

    frame = pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype="Int64"),
            "doc": [{"b": [1, "é"], "a": None}, [1, 2, {"x": True}], None],
            "amount": [Decimal("12345678901234567890.123456789"), Decimal("-0.01"), None],
            "text": pd.Series(["x" * 1_000_000, "ünïcødé ✓ 漢字", None], dtype="str"),
        }
    )
    captured: dict[str, pd.DataFrame] = {}

    @dg.asset(key=["io_test", "documents"])
    def documents() -> pd.DataFrame:
        return frame

    @dg.asset(key=["io_test", "documents_copy"], ins={"docs": dg.AssetIn(key=documents.key)})
    def documents_copy(docs: pd.DataFrame) -> pd.DataFrame:
        captured["docs"] = docs
        return docs

    assert dg.materialize([documents, documents_copy], resources=resources(clean_warehouse)).success
    read = captured["docs"].sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(read, frame)
    types = counts_by(
        clean_warehouse,
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_schema = 'io_test' AND table_name = 'documents' AND column_name = 'doc'",
    )
    assert types == [("jsonb",)]


def test_input_projection_reads_only_the_named_columns(clean_warehouse: Warehouse) -> None:
    captured: dict[str, pd.DataFrame] = {}

    @dg.asset(key=["io_test", "wide"])
    def wide() -> pd.DataFrame:
        return pd.DataFrame({"a": [1], "b": ["x"], "c": [2.5]})

    @dg.asset(
        key=["io_test", "narrow"],
        ins={
            "source": dg.AssetIn(
                key=wide.key, metadata={"columns": ["c", "a"], "include_row_hash": True}
            )
        },
    )
    def narrow(source: pd.DataFrame) -> pd.DataFrame:
        captured["source"] = source
        return source

    assert dg.materialize([wide, narrow], resources=resources(clean_warehouse)).success
    assert list(captured["source"].columns) == ["c", "a"]


def test_column_schema_metadata_drives_dagsters_schema_change_checks(
    clean_warehouse: Warehouse,
) -> None:
    frames = [
        pd.DataFrame({"id": [1], "name": ["a"]}),
        pd.DataFrame({"id": [2], "name": ["b"]}),
        pd.DataFrame({"id": [3], "name": ["c"], "note": ["added"]}),
    ]

    @dg.asset(key=["io_test", "people"])
    def people() -> pd.DataFrame:
        return frames.pop(0)

    checks = dg.build_column_schema_change_checks(assets=[people])
    outcomes = []
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(3):
            result = dg.materialize(
                [people, *checks], resources=resources(clean_warehouse), instance=instance
            )
            outcomes.append(result.get_asset_check_evaluations()[0].passed)
    assert outcomes == [True, True, False]
