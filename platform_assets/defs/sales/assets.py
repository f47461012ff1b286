"""Sales assets built in Python: daily metrics over the orders dataset.

``sales/orders`` itself is declared in ``datasets/orders.yaml`` and built by ``defs/datasets``.
"""

from datetime import timedelta

import dagster as dg
import pandas as pd

from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.defs.sales.automation import follow_upstream
from platform_assets.defs.sales.metrics import metrics_by_day
from platform_assets.defs.sales.partitions import (
    ORDERS_SPEC,
    daily_backfill_policy,
    daily_partitions,
)
from platform_assets.lib.logging import run_logger


@dg.asset(
    key_prefix=["sales"],
    ins={"orders": dg.AssetIn(key=ORDERS_SPEC.asset_key)},
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    automation_condition=follow_upstream,
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=38), warn_window=timedelta(hours=30)
    ),
    pool=WAREHOUSE_POOL,
    group_name="sales",
    kinds={"postgres", "pandas"},
    owners=["team:data-platform"],
    metadata={"partition_column": "metric_date", "primary_key": ["metric_date", "currency"]},
)
def daily_order_metrics(
    context: dg.AssetExecutionContext, orders: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """Per day and currency: orders, revenue, average order value and distinct customers."""
    days = [
        daily_partitions.time_window_for_partition_key(key).start.date()
        for key in context.partition_keys
    ]
    metrics = metrics_by_day(orders, days)
    run_logger(context).info("metrics_computed", days=len(days), rows=len(metrics))
    return dg.Output(metrics, metadata={"currencies": int(metrics["currency"].nunique())})
