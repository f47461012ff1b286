"""The asset of a dataset read from a Postgres table: an incremental extract, upserted by key.

Each run takes the rows changed since the last committed high-water mark, streams them through
the spec's validation and transform like a file's rows, and upserts the good ones. The new mark
commits in the same transaction as the rows and dead letters it covers, so a crash can neither
skip nor repeat a change. The table has no partitions: its accounting and dead letters sit under
the key ``*`` and add up over every extract.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg

from platform_assets.defs.datasets.asset_options import dataset_asset_options, dataset_metadata
from platform_assets.lib.dead_letters.side_writes import read_checkpoint
from platform_assets.lib.ingestion.pipeline import ingest_batch, unique_key_tracker
from platform_assets.lib.ingestion.result import Checkpoint, IngestedChunk, IngestedStream
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.logging import run_logger
from platform_assets.lib.sources.postgres_table import PostgresTableSource, changed_rows
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transient import permanent_unless_transient, retry_transient

# An unpartitioned dataset's rows belong to no time window; its one "partition" is the table.
WHOLE_TABLE_WINDOW = PartitionWindow(
    WHOLE_TABLE, datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
)


# Extracted once as soon as the platform starts, not only at the schedule's first tick: requested
# while never stored, once (a failed first extract waits for the schedule, it is not retried here).
FIRST_EXTRACT = (
    dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.newly_requested().since(dg.AutomationCondition.newly_updated())
).with_label("first_extract")


def table_source_of(spec: DatasetSpec) -> PostgresTableSource:
    """The spec's table source (the spec is an incremental extract)."""
    assert isinstance(spec.source, PostgresTableSource), f"{spec.name} has no table source"
    return spec.source


def checkpoint_name(spec: DatasetSpec) -> str:
    """The name the dataset's high-water mark is committed under: the dataset's own."""
    return spec.name


def build_table_extract_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The incremental extract a table-source spec declares (see the module docstring)."""
    source = table_source_of(spec)
    transform = spec.transform_function()

    @dg.asset(
        **dataset_asset_options(spec),
        kinds={"postgres"},
        required_resource_keys={"warehouse"},
        automation_condition=FIRST_EXTRACT,
        metadata={
            **dataset_metadata(spec),
            "source_table": source.table,
            "incremental_by": {
                "updated_at_column": source.updated_at_column,
                "updated_at_type": spec.column(source.updated_at_column).type,  # type: ignore[union-attr]
                "key_column": source.key_column,
            },
        },
    )
    def extract(context: dg.AssetExecutionContext) -> dg.Output[IngestedStream]:
        """The source rows changed since the last extract, validated and upserted by key, with
        their dead letters and the new high-water mark in the same transaction."""
        warehouse: Warehouse = context.resources.warehouse
        log = run_logger(context)

        def last_mark() -> dict | None:
            with warehouse.connection() as conn:
                return read_checkpoint(conn, checkpoint_name(spec))

        with permanent_unless_transient(f"dataset {spec.name} checkpoint"):
            mark = retry_transient(last_mark, log)
        log.info(
            "table_extract_started",
            dataset=spec.name,
            source_table=source.table,
            source_database=source.described_database,
            after=mark,
        )

        def read_chunks() -> Iterator[IngestedChunk]:
            keys = unique_key_tracker(spec)
            with source.database(warehouse) as database:
                for raw, new_mark in changed_rows(source, database, mark, spec.source_column_names):
                    chunk = ingest_batch(spec, raw, WHOLE_TABLE_WINDOW, keys, transform)
                    checkpoint = (
                        Checkpoint(checkpoint_name(spec), new_mark, started_from=mark)
                        if new_mark
                        else None
                    )
                    yield replace(chunk, checkpoint=checkpoint)

        return dg.Output(
            IngestedStream(read_chunks),
            metadata={
                "high_water_before": dg.MetadataValue.json(mark or {}),
                "source_table": source.table,
                "source_database": source.described_database,
            },
        )

    return extract
