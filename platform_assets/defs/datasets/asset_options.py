"""What every dataset's asset shares, whatever its source: pool, freshness, owners, retries and
the column schema its spec declares."""

from datetime import timedelta
from typing import Any

import dagster as dg

from platform_assets.defs.datasets.columns import declared_column_schema
from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.defs.retries import WAREHOUSE_RETRY_POLICY
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.tables.reader_access import PII_COLUMNS_METADATA


def dataset_asset_options(spec: DatasetSpec) -> dict[str, Any]:
    """The ``@dg.asset`` arguments every dataset's asset takes from its spec (its metadata holds
    what the IO manager needs besides: write mode, key, column schema)."""
    ended = spec.partitions is not None and spec.partitions.end is not None
    return {
        "key": spec.asset_key,
        "description": spec.description,
        "pool": WAREHOUSE_POOL,
        # A dataset whose partitions end (historical data) never grows stale: no policy.
        "freshness_policy": None
        if ended
        else dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=spec.freshness.fail_after_hours),
            warn_window=timedelta(hours=spec.freshness.warn_after_hours),
        ),
        "group_name": spec.group,
        "owners": spec.owners,
        "retry_policy": WAREHOUSE_RETRY_POLICY,
    }


def dataset_metadata(spec: DatasetSpec) -> dict[str, Any]:
    """The asset's definition metadata every dataset has: for the IO manager and the UI."""
    return {
        "primary_key": spec.primary_key,
        # NOT NULL in the table (lib/io_manager): the loader already dead-letters a row without.
        "required_columns": [c.name for c in spec.columns if c.required],
        "write_mode": spec.write_mode,
        "dataset": spec.name,
        # Columns the reader role may not read at all (lib/tables/reader_access).
        PII_COLUMNS_METADATA: [c.name for c in spec.columns if "pii" in (c.tags or {})],
        "dagster/column_schema": dg.MetadataValue.table_schema(declared_column_schema(spec)),
    }
