"""Partitions of the sales domain: the orders dataset's days, and its backfill policy.

Derived from ``datasets/orders.yaml``, so the metrics can never disagree with the orders on what a
day is, and a backfill puts both in the same runs.
"""

from platform_assets.defs.datasets.partitions import dataset_backfill_policy, dataset_partitions
from platform_assets.defs.datasets.specs import spec_named

ORDERS_SPEC = spec_named("orders")
daily_partitions = dataset_partitions(ORDERS_SPEC)
daily_backfill_policy = dataset_backfill_policy(ORDERS_SPEC)
