"""Platform machinery with no Dagster definitions: Postgres, landing files, logging."""
