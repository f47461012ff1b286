"""Pure judgements the asset checks make from counted figures (no database, no Dagster)."""
