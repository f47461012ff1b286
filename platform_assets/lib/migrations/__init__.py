"""Guarded schema and data migrations: the model, ledger, baseline, batched backfill and lint."""
