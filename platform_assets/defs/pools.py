"""The Dagster pools that bound how many steps use a shared system at once.

Every step that writes the warehouse claims a slot of ``WAREHOUSE_POOL``; its limit (in
``dagster.yaml``, ``concurrency.pools``) caps the Postgres connections a backfill of any size can
open, however many runs the queue lets start.
"""

WAREHOUSE_POOL = "warehouse"
