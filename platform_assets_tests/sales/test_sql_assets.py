"""Assets declared as SQL (``defs/sql_assets``): the metrics of a range computed by PostgreSQL in
one statement, in the write's transaction, with what a frame's write guarantees."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.sales.assets import daily_order_metrics
from platform_assets.defs.sales.partitions import ORDERS_SPEC, daily_partitions
from platform_assets.defs.sql_assets import sql_asset
from platform_assets.lib.ingestion.spec import ColumnSpec
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.statement_count import counted_statements
from platform_assets_tests.datasets.test_range_runs import FIRST, range_tags
from platform_assets_tests.helpers import fetch_all, table_checksum
from platform_assets_tests.sales.test_pipeline import ORDERS

DAYS = [FIRST + timedelta(days=n) for n in range(10)]
# The metrics recounted independently of the asset's query, straight from the stored orders.
RECOUNT = sql.SQL(
    "SELECT order_date, currency, count(*),"
    " coalesce(sum(amount) FILTER (WHERE status NOT IN ('cancelled', 'returned')), 0),"
    " count(DISTINCT customer_id) FROM sales.orders GROUP BY 1, 2 ORDER BY 1, 2"
)
STORED = sql.SQL(
    "SELECT metric_date, currency, order_count, revenue, distinct_customers"
    " FROM sales.daily_order_metrics ORDER BY 1, 2"
)


@pytest.fixture
def loaded(tmp_path: Path, resources: dict, instance: dg.DagsterInstance) -> dict:
    """Ten days of orders, loaded in one run."""
    for n, day in enumerate(DAYS):
        write_day(tmp_path / "orders", day, orders=150, seed=90 + n, malformed_share=0.02)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    tags = range_tags(DAYS[0], DAYS[-1])
    assert dg.materialize([ORDERS], tags=tags, resources=resources, instance=instance).success
    return resources


def test_metrics_of_any_range_are_one_statement_and_exact(loaded, instance) -> None:
    """One day and ten days of metrics send the warehouse the same statements (the rows never
    come to Python), and the stored metrics equal the orders recounted by the database."""
    day = DAYS[0].isoformat()
    assert dg.materialize(  # creates the table: the runs measured below find it there
        [daily_order_metrics], partition_key=day, resources=loaded, instance=instance
    ).success
    with counted_statements() as one_day:
        assert dg.materialize(
            [daily_order_metrics],
            partition_key=DAYS[0].isoformat(),
            resources=loaded,
            instance=instance,
        ).success
    with counted_statements() as ten_days:
        ranged = dg.materialize(
            [daily_order_metrics],
            tags=range_tags(DAYS[0], DAYS[-1]),
            resources=loaded,
            instance=instance,
        )
    assert ranged.success
    assert ten_days == one_day and sum(1 for q in ten_days if q.startswith("WITH inserted")) == 1
    assert fetch_all(loaded["warehouse"], STORED) == fetch_all(loaded["warehouse"], RECOUNT)
    types = dict(
        fetch_all(
            loaded["warehouse"],
            sql.SQL(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'sales' AND table_name = 'daily_order_metrics'"
            ),
        )
    )
    assert types["revenue"] == "numeric" and types["order_count"] == "bigint"

    events = ranged.get_asset_materialization_events()
    by_day = {e.materialization.partition: e.materialization.metadata for e in events}
    per_day = dict(
        fetch_all(
            loaded["warehouse"],
            sql.SQL("SELECT metric_date::text, count(*) FROM sales.daily_order_metrics GROUP BY 1"),
        )
    )
    assert {day: figures["dagster/row_count"].value for day, figures in by_day.items()} == per_day
    assert {figures["content_version"].value for figures in by_day.values()}  # versioned

    again = dg.materialize(
        [daily_order_metrics],
        tags=range_tags(DAYS[0], DAYS[-1]),
        resources=loaded,
        instance=instance,
    )
    versions = {
        e.materialization.partition: e.materialization.metadata["rows_unchanged"].value
        for e in again.get_asset_materialization_events()
    }
    assert again.success and versions == {day: 0 for day in per_day}  # a replace, every time
    assert fetch_all(loaded["warehouse"], STORED) == fetch_all(loaded["warehouse"], RECOUNT)


def _metrics_from(tmp_path: Path, query: str) -> dg.AssetsDefinition:
    """The metrics' key and table, computed by ``query`` instead."""
    query_file = tmp_path / "metrics.sql"
    query_file.write_text(query)
    return sql_asset(
        key=["sales", "daily_order_metrics"],
        query_file=query_file,
        upstream={"orders": ORDERS_SPEC.asset_key},
        columns=[
            ColumnSpec(name="metric_date", type="date"),
            ColumnSpec(name="currency", type="text"),
            ColumnSpec(name="order_count", type="integer"),
        ],
        description="test",
        partition_column="metric_date",
        primary_key=["metric_date", "currency"],
        partitions_def=daily_partitions,
    )


def test_rows_outside_the_run_fail_the_write_and_change_nothing(tmp_path, loaded, instance) -> None:
    """A query that forgets the window returns other days' rows: the write fails naming them,
    and the partition keeps its rows (the DELETE rolled back with the INSERT)."""
    first = _metrics_from(
        tmp_path,
        "SELECT order_date AS metric_date, currency, count(*) AS order_count FROM {orders}"
        " WHERE order_date >= {window_start} AND order_date < {window_end} GROUP BY 1, 2",
    )
    day = DAYS[3].isoformat()
    assert dg.materialize([first], partition_key=day, resources=loaded, instance=instance).success
    before = table_checksum(loaded["warehouse"], "sales", "daily_order_metrics")

    unbounded = _metrics_from(
        tmp_path,
        "SELECT order_date AS metric_date, currency, count(*) AS order_count FROM {orders}"
        " GROUP BY 1, 2",
    )
    failed = dg.materialize(
        [unbounded], partition_key=day, resources=loaded, instance=instance, raise_on_error=False
    )
    assert not failed.success
    message = failed.failure_data_for_node("sales__daily_order_metrics").error.cause.message
    assert "outside partition(s) " + day in message and "nothing was written" in message
    assert table_checksum(loaded["warehouse"], "sales", "daily_order_metrics") == before


def test_a_placeholder_the_query_was_not_given_is_named(tmp_path, loaded, instance) -> None:
    typo = _metrics_from(
        tmp_path,
        "SELECT order_date AS metric_date, currency, count(*) AS order_count FROM {order}"
        " GROUP BY 1, 2",
    )
    failed = dg.materialize(
        [typo],
        partition_key=DAYS[0].isoformat(),
        resources=loaded,
        instance=instance,
        raise_on_error=False,
    )
    message = failed.failure_data_for_node("sales__daily_order_metrics").error.cause.message
    assert "uses {order}, which is none of ['orders', 'window_end', 'window_start']" in message


def test_a_computed_column_cannot_declare_row_rules(tmp_path) -> None:
    query_file = tmp_path / "q.sql"
    query_file.write_text("SELECT 1 AS n")
    with pytest.raises(ValueError, match=r"column n declares \['required'\]"):
        sql_asset(
            key=["x", "y"],
            query_file=query_file,
            upstream={},
            columns=[ColumnSpec(name="n", type="integer", required=True)],
            description="test",
        )


def test_lineage_and_column_schema_are_declared_before_any_run() -> None:
    spec = daily_order_metrics.specs_by_key[daily_order_metrics.key]
    assert {dep.asset_key for dep in spec.deps} == {dg.AssetKey(ORDERS_SPEC.asset_key)}
    schema = spec.metadata["dagster/column_schema"].schema
    assert {c.name: c.type for c in schema.columns}["revenue"] == "numeric(18,2)"
    assert spec.code_version  # a changed query makes the metrics stale
