"""Checks of the CRM extract: the staged customers are keyed, and the checkpoint is true."""

import dagster as dg

from platform_assets.defs.crm.assets import SOURCE, customers
from platform_assets.lib.dead_letters.side_writes import read_checkpoint
from platform_assets.lib.sources.incremental import holds_high_water
from platform_assets.lib.tables.partition_profile import key_faults
from platform_assets.lib.tables.table_slice import TableSlice
from platform_assets.lib.warehouse.resource import Warehouse

STAGED = TableSlice("staging", "customers")


@dg.asset_check(
    asset=customers,
    blocking=True,
    description="No two staged customers share an id, and none lacks one (counted in Postgres).",
)
def customer_ids_unique(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Fails if an upsert ever left two rows for one customer, or a row without an id."""
    with warehouse.bulk_connection() as conn:
        faults = key_faults(conn, STAGED, ["id"])
    return dg.AssetCheckResult(
        passed=faults.clean,
        metadata={
            "rows": faults.rows,
            "repeated_key_rows": faults.repeated_key_rows,
            "null_key_rows": faults.null_key_rows,
        },
    )


@dg.asset_check(
    asset=customers,
    blocking=True,
    description=(
        "The extract's committed high-water mark is not ahead of the staged rows: a row at or"
        " past it is stored, so the next extract cannot skip a change."
    ),
)
def checkpoint_not_ahead(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Fails if the checkpoint claims changes the staging table does not hold."""
    with warehouse.connection() as conn:
        mark = read_checkpoint(conn, SOURCE)
    if mark is None:
        return dg.AssetCheckResult(passed=True, description="no extract committed yet")
    held = holds_high_water(warehouse, STAGED.schema, STAGED.table, mark)
    return dg.AssetCheckResult(
        passed=held,
        description="a staged row is at the mark" if held else "no staged row reaches the mark",
        metadata={"high_water": dg.MetadataValue.json(mark)},
    )
