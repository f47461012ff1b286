"""Incremental extracts from the CRM source tables."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.lib.dead_letters.side_writes import read_checkpoint
from platform_assets.lib.ingestion.result import (
    Checkpoint,
    IngestedChunk,
    IngestedStream,
    no_dead_letters,
)
from platform_assets.lib.logging import run_logger
from platform_assets.lib.sources.incremental import changed_row_chunks
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.warehouse.resource import Warehouse

SOURCE = "crm.customers"


class IncrementalExtractConfig(dg.Config):
    """How much one run extracts, how fresh a row may be before it is taken, and chunk size."""

    max_rows: int = 1_000_000
    safety_lag_s: float = 5.0
    chunk_rows: int = 50_000


@dg.asset(
    key=["staging", "customers"],
    pool=WAREHOUSE_POOL,
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
    ),
    group_name="crm",
    kinds={"postgres", "pandas"},
    owners=["team:data-platform"],
    metadata={"write_mode": "upsert", "primary_key": ["id"]},
)
def customers(
    context: dg.AssetExecutionContext, config: IncrementalExtractConfig, warehouse: Warehouse
) -> dg.Output[IngestedStream]:
    """Customers changed in `crm.customers` since the last extract, upserted by id.

    Streamed in chunks from one snapshot of the source. The high-water mark `(updated_at, id)`
    after the last chunk commits in the same transaction as the rows it covers, so a crash can
    neither skip nor repeat a change; unchanged rows are not rewritten.
    """
    with warehouse.connection() as conn:
        mark = read_checkpoint(conn, SOURCE)
    run_logger(context).info("customers_extract_started", after=mark)

    def read_chunks() -> Iterator[IngestedChunk]:
        for rows, new_mark in changed_row_chunks(
            warehouse,
            "crm",
            "customers",
            mark,
            config.max_rows,
            config.safety_lag_s,
            config.chunk_rows,
        ):
            yield IngestedChunk(
                rows=rows,
                dead_letters=no_dead_letters(),
                rows_read={WHOLE_TABLE: rows.num_rows},
                checkpoint=Checkpoint(SOURCE, new_mark) if new_mark else None,
            )

    return dg.Output(
        IngestedStream(read_chunks),
        metadata={"high_water_before": dg.MetadataValue.json(mark or {})},
    )
