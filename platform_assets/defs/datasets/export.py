"""The ``export_dead_letters_job``: a dataset's dead letters to a Parquet file, from the UI."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from pydantic import Field

from platform_assets.defs.datasets.specs import dataset_field, spec_named
from platform_assets.defs.resources import DEAD_LETTER_JOB_RESOURCES
from platform_assets.defs.retries import WAREHOUSE_RETRY_POLICY
from platform_assets.lib import settings
from platform_assets.lib.dead_letters.export import export_dead_letters
from platform_assets.lib.logging import run_logger
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transient import permanent_unless_transient, retry_transient


class ExportConfig(dg.Config):
    """Which dead letters to export, and where to (default: under the data directory)."""

    dataset: str = dataset_field()
    partition_key: str | None = None
    status: str | None = Field(default="new", description="None: every status")
    path: str | None = Field(default=None, description="Default: <data dir>/exports/...")


@dg.op(out=dg.Out(dg.Nothing), tags={"kind": "parquet"}, retry_policy=WAREHOUSE_RETRY_POLICY)
def export_dead_letters_op(
    context: dg.OpExecutionContext, config: ExportConfig, warehouse: Warehouse
) -> dg.Output:
    """Write the matching dead letters (payload and detail as JSON text) to one Parquet file,
    for analysis or hand-off; the file and row count are in the output's metadata.

    Streamed in batches and renamed into place once complete (a killed export leaves the previous
    file or none); done again after a transient database error."""
    spec = spec_named(config.dataset)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (
        Path(config.path)
        if config.path
        else (settings.data_dir() / "exports" / f"{spec.name}_dead_letters_{stamp}.parquet")
    )
    with permanent_unless_transient(f"export of {spec.name} dead letters"):
        rows = retry_transient(
            lambda: export_dead_letters(
                warehouse,
                path,
                asset_key="/".join(spec.asset_key),
                partition_key=config.partition_key,
                status=config.status,
            ),
            run_logger(context),
        )
    context.log.info(f"exported {rows} dead letter(s) of {spec.name} to {path}")
    return dg.Output(None, metadata={"path": dg.MetadataValue.path(str(path)), "rows": rows})


@dg.job(
    description="Export a dataset's dead letters to Parquet (the reference's save_failures).",
    resource_defs=DEAD_LETTER_JOB_RESOURCES,
)
def export_dead_letters_job() -> None:
    """One op: the export (see ``export_dead_letters_op``)."""
    export_dead_letters_op()
