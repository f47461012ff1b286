"""Sales assets built in Python: daily metrics over the orders dataset.

``sales/orders`` itself is declared in ``datasets/orders.yaml`` and built by ``defs/datasets``.
"""

import dagster as dg
import pandas as pd

from platform_assets.defs.sales.metrics import daily_metrics
from platform_assets.defs.sales.partitions import daily_partitions
from platform_assets.lib.logging import run_logger


@dg.asset(
    key_prefix=["sales"],
    partitions_def=daily_partitions,
    group_name="sales",
    kinds={"postgres", "pandas"},
    owners=["team:data-platform"],
    metadata={"partition_column": "metric_date", "primary_key": ["metric_date", "currency"]},
)
def daily_order_metrics(
    context: dg.AssetExecutionContext, orders: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """Per day and currency: orders, revenue, average order value and distinct customers."""
    day = context.partition_time_window.start.date()
    metrics = daily_metrics(orders, day)
    run_logger(context).info("metrics_computed", currencies=len(metrics))
    return dg.Output(metrics, metadata={"currencies": len(metrics)})
