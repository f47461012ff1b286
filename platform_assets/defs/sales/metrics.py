"""Daily order metrics from typed orders: pure pandas, tested without Dagster."""

from datetime import date
from decimal import Decimal

import pandas as pd

NON_REVENUE_STATUSES = ("cancelled", "returned")
METRIC_COLUMNS = [
    "metric_date",
    "currency",
    "order_count",
    "revenue_order_count",
    "cancelled_or_returned_count",
    "revenue",
    "average_order_value",
    "distinct_customers",
]


def daily_metrics(orders: pd.DataFrame, day: date) -> pd.DataFrame:
    """One row per currency for ``day``: orders, revenue, average order value, distinct customers.

    Revenue counts orders that were neither cancelled nor returned; the average order value is that
    revenue over those orders. Amounts stay ``Decimal`` so the sums are exact.
    """
    rows = []
    for currency, group in orders.groupby("currency", sort=True):
        earning = group[~group["status"].isin(NON_REVENUE_STATUSES)]
        revenue = sum(earning["amount"], Decimal(0))
        rows.append(
            {
                "metric_date": day,
                "currency": currency,
                "order_count": len(group),
                "revenue_order_count": len(earning),
                "cancelled_or_returned_count": len(group) - len(earning),
                "revenue": revenue,
                "average_order_value": (
                    (revenue / len(earning)).quantize(Decimal("0.01")) if len(earning) else None
                ),
                "distinct_customers": group["customer_id"].nunique(),
            }
        )
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    return frame.astype(
        {
            "order_count": "Int64",
            "revenue_order_count": "Int64",
            "cancelled_or_returned_count": "Int64",
            "distinct_customers": "Int64",
        }
    )


def metrics_by_day(orders: pd.DataFrame, days: list[date]) -> pd.DataFrame:
    """``daily_metrics`` for each of ``days`` (a range run), from orders of those days."""
    frames = [daily_metrics(orders[orders["order_date"] == day], day) for day in days]
    return pd.concat(frames, ignore_index=True)
