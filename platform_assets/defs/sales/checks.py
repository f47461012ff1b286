"""Checks of the sales metrics: every metric day recounted from the stored orders, exactly."""

from collections.abc import Iterator, Sequence
from decimal import Decimal

import dagster as dg

from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.defs.partitioned_checks import evaluate_partitions
from platform_assets.defs.sales.assets import daily_order_metrics
from platform_assets.defs.sales.partitions import ORDERS_SPEC, daily_partitions
from platform_assets.lib.tables.grouped_totals import grouped_totals
from platform_assets.lib.tables.table_slice import TableSlice
from platform_assets.lib.warehouse.resource import Warehouse

METRICS_KEY = dg.AssetKey(["sales", "daily_order_metrics"])
RECONCILES = dg.AssetCheckKey(METRICS_KEY, "reconciles_with_orders")
# Stated here again, not imported from the metrics' query: the check recounts independently.
NON_REVENUE_STATUSES = ("cancelled", "returned")


def _metrics_slice(partition_keys: Sequence[str]) -> TableSlice:
    orders = dataset_table_slice(ORDERS_SPEC, partition_keys)
    return TableSlice(
        "sales", "daily_order_metrics", ("metric_date",), orders.partitions, orders.columns
    )


def reconcile_days(
    warehouse: Warehouse, partition_keys: Sequence[str]
) -> dict[str, dg.AssetCheckResult]:
    """Per day and currency, the metrics against the day's stored orders recounted by the
    database: order count and revenue must be equal to the last cent. Three statements for any
    number of days."""
    orders = dataset_table_slice(ORDERS_SPEC, partition_keys)
    with warehouse.bulk_connection() as conn:
        counted = grouped_totals(conn, orders, "currency", [])
        earned = grouped_totals(
            conn, orders, "currency", ["amount"], ("status", list(NON_REVENUE_STATUSES))
        )
        reported = grouped_totals(
            conn, _metrics_slice(partition_keys), "currency", ["order_count", "revenue"]
        )
    return {key: _reconciled(counted[key], earned[key], reported[key]) for key in partition_keys}


def _reconciled(
    counted: dict[str, dict[str, Decimal]],
    earned: dict[str, dict[str, Decimal]],
    reported: dict[str, dict[str, Decimal]],
) -> dg.AssetCheckResult:
    """One day's verdict: its orders counted and earned per currency against its metrics."""
    expected = {
        currency: {
            "order_count": totals["rows"],
            "revenue": earned.get(currency, {}).get("amount", Decimal(0)),
        }
        for currency, totals in counted.items()
    }
    found = {
        currency: {"order_count": totals["order_count"], "revenue": totals["revenue"]}
        for currency, totals in reported.items()
    }
    differences = {
        currency: {"orders": expected.get(currency), "metrics": found.get(currency)}
        for currency in sorted(set(expected) | set(found))
        if expected.get(currency) != found.get(currency)
    }
    return dg.AssetCheckResult(
        passed=not differences,
        description=(
            f"{len(expected)} currencies agree"
            if not differences
            else f"{len(differences)} currencies disagree: {sorted(differences)}"
        ),
        metadata={
            "orders": int(sum(t["rows"] for t in counted.values())),
            "revenue": str(sum((e["revenue"] for e in expected.values()), Decimal(0))),
            "differences": dg.MetadataValue.json(
                {c: {s: _plain(v) for s, v in d.items()} for c, d in differences.items()}
            ),
        },
    )


def _plain(totals: dict[str, Decimal] | None) -> dict[str, str] | None:
    return None if totals is None else {name: str(value) for name, value in totals.items()}


@dg.asset_check(
    asset=daily_order_metrics,
    name=RECONCILES.name,
    partitions_def=daily_partitions,
    blocking=True,
    description=(
        "Per day and currency, order_count and revenue equal the stored orders recounted by"
        " the database (revenue excludes cancelled and returned orders), exactly."
    ),
)
def reconciles_with_orders(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """Fails for a day whose metrics do not add up to its orders, naming the currencies."""
    yield from evaluate_partitions(
        context, RECONCILES, True, lambda keys: reconcile_days(warehouse, keys)
    )
