"""Sales assets beyond the orders dataset: daily metrics, computed in SQL where the orders are.

``sales/orders`` itself is declared in ``datasets/orders.yaml`` and built by ``defs/datasets``.
"""

from datetime import timedelta
from pathlib import Path

import dagster as dg

from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.defs.retries import WAREHOUSE_RETRY_POLICY
from platform_assets.defs.sales.automation import follow_upstream
from platform_assets.defs.sales.partitions import (
    ORDERS_SPEC,
    daily_backfill_policy,
    daily_partitions,
)
from platform_assets.defs.sql_assets import sql_asset
from platform_assets.lib.ingestion.spec import ColumnSpec


def _count(name: str, description: str) -> ColumnSpec:
    return ColumnSpec(name=name, type="integer", description=description)


def _money(name: str, description: str) -> ColumnSpec:
    return ColumnSpec(name=name, type="decimal", precision=18, scale=2, description=description)


daily_order_metrics = sql_asset(
    key=["sales", "daily_order_metrics"],
    query_file=Path(__file__).with_name("daily_order_metrics.sql"),
    upstream={"orders": ORDERS_SPEC.asset_key},
    columns=[
        ColumnSpec(name="metric_date", type="date", description="The orders' day"),
        ColumnSpec(name="currency", type="text", description="ISO 4217 code"),
        _count("order_count", "Orders of the day in the currency"),
        _count("revenue_order_count", "Of those, orders neither cancelled nor returned"),
        _count("cancelled_or_returned_count", "Of those, orders cancelled or returned"),
        _money("revenue", "Sum of the amounts of the orders that earn revenue"),
        _money("average_order_value", "revenue / revenue_order_count, rounded to the cent"),
        _count("distinct_customers", "Distinct customers who ordered"),
    ],
    description=(
        "Per day and currency: orders, revenue, average order value and distinct customers,"
        " aggregated by PostgreSQL over the day's stored orders (daily_order_metrics.sql)."
    ),
    partition_column="metric_date",
    primary_key=["metric_date", "currency"],
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    automation_condition=follow_upstream,
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=38), warn_window=timedelta(hours=30)
    ),
    pool=WAREHOUSE_POOL,
    retry_policy=WAREHOUSE_RETRY_POLICY,
    group_name="sales",
    owners=["team:data-platform"],
)
