"""A Dagster data platform on PostgreSQL: idempotent partitioned assets loaded through a Postgres IO manager."""
