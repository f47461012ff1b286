"""Partitions of the sales domain."""

import dagster as dg

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
