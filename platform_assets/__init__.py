"""A Dagster data platform on PostgreSQL: idempotent partitioned assets, loaded by an IO manager."""
