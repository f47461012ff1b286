"""What the Dagster UI shows, one package per domain."""
