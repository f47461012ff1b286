"""Ingestion: what validation hands the IO manager (good rows, dead letters, rows read)."""
