"""Incremental extracts from the CRM source tables."""

import dagster as dg

from platform_assets.lib.ingestion.result import Checkpoint, IngestedFrame, no_dead_letters
from platform_assets.lib.logging import run_logger
from platform_assets.lib.postgres.incremental import changed_rows
from platform_assets.lib.postgres.side_writes import read_checkpoint
from platform_assets.lib.postgres.slice_io import WHOLE_TABLE
from platform_assets.lib.postgres.warehouse import Warehouse

SOURCE = "crm.customers"


class IncrementalExtractConfig(dg.Config):
    """How much one run extracts, and how fresh a row may be before it is taken."""

    max_rows: int = 100_000
    safety_lag_s: float = 5.0


@dg.asset(
    key=["staging", "customers"],
    group_name="crm",
    kinds={"postgres", "pandas"},
    owners=["team:data-platform"],
    metadata={"write_mode": "upsert", "primary_key": ["id"]},
)
def customers(
    context: dg.AssetExecutionContext, config: IncrementalExtractConfig, warehouse: Warehouse
) -> dg.Output[IngestedFrame]:
    """Customers changed in ``crm.customers`` since the last extract, upserted by id.

    The high-water mark ``(updated_at, id)`` commits in the same transaction as the rows it covers,
    so a crash can neither skip nor repeat a change; unchanged rows are not rewritten.
    """
    with warehouse.connection() as conn:
        mark = read_checkpoint(conn, SOURCE)
    rows, new_mark = changed_rows(
        warehouse, "crm", "customers", mark, config.max_rows, config.safety_lag_s
    )
    run_logger(context).info("customers_extracted", rows=len(rows), after=mark, up_to=new_mark)
    return dg.Output(
        IngestedFrame(
            rows=rows,
            dead_letters=no_dead_letters(),
            rows_read={WHOLE_TABLE: len(rows)},
            checkpoint=Checkpoint(SOURCE, new_mark) if new_mark else None,
        ),
        metadata={
            "more_pending": len(rows) == config.max_rows,
            "high_water": str(new_mark or mark),
        },
    )
