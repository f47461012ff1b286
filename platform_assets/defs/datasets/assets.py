"""Assets built from the dataset specs in ``platform_assets/datasets/*.yaml``.

Each spec becomes one daily-partitioned asset that streams the day's landing files through
parsing, validation and the spec's transform into the Postgres IO manager, which writes the good
rows, the dead letters and the partition's accounting in one transaction (see docs/datasets.md).
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from platform_assets.lib.ingestion.pipeline import ingest_partition, landing_files, read_file
from platform_assets.lib.ingestion.result import IngestedChunk, IngestedStream
from platform_assets.lib.ingestion.spec import DatasetSpec, load_specs
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.landing.landing_zone import LandingZone
from platform_assets.lib.landing.readers import LandingFileError
from platform_assets.lib.logging import run_logger
from platform_assets.lib.postgres.table_slice import PartitionSlice, TableSlice, TimeRange

DATASETS_DIR = Path(__file__).resolve().parents[2] / "datasets"
# Transient errors are retried inside the write (tenacity, exponential backoff with jitter); this
# retries a step that still failed on one, later. Permanent errors are raised as
# ``dg.Failure(allow_retries=False)`` and never retried.
DATASET_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def dataset_partitions(spec: DatasetSpec) -> dg.DailyPartitionsDefinition:
    """The spec's daily partitions (UTC days)."""
    return dg.DailyPartitionsDefinition(
        start_date=spec.partitions.start.isoformat(), timezone="UTC"
    )


def partition_window(context: dg.AssetExecutionContext) -> PartitionWindow:
    """The partition being processed, as the window its rows must fall in."""
    window = context.partition_time_window
    return PartitionWindow(context.partition_key, window.start, window.end)


def dataset_table_slice(spec: DatasetSpec, partition_key: str) -> TableSlice:
    """Where one partition of the dataset lives, as the IO manager writes it."""
    window = dataset_partitions(spec).time_window_for_partition_key(partition_key)
    return TableSlice(
        schema="_".join(spec.asset_key[:-1]) or "public",
        table=spec.asset_key[-1],
        partition_columns=(spec.partition_column,),
        partitions=(PartitionSlice(partition_key, TimeRange(window.start, window.end)),),
    )


def _column_schema(spec: DatasetSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.type,
                description=column.description or None,
                constraints=dg.TableColumnConstraints(nullable=not column.required),
            )
            for column in spec.columns
        ]
    )


def build_dataset_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The asset a dataset spec declares."""
    transform = spec.transform_function()

    @dg.asset(
        key=spec.asset_key,
        description=spec.description,
        partitions_def=dataset_partitions(spec),
        group_name=spec.group,
        owners=spec.owners,
        kinds={"postgres", "csv" if spec.source.format == "csv" else "parquet"},
        retry_policy=DATASET_RETRY_POLICY,
        metadata={
            "partition_column": spec.partition_column,
            "primary_key": spec.primary_key,
            "write_mode": spec.write_mode,
            "dataset": spec.name,
            "declared_columns": dg.MetadataValue.table_schema(_column_schema(spec)),
        },
    )
    def dataset(
        context: dg.AssetExecutionContext, landing: LandingZone
    ) -> dg.Output[IngestedStream]:
        """The day's landing files, streamed through the spec's validation into the warehouse."""
        window = partition_window(context)
        try:
            files = landing_files(spec.source, Path(landing.directory), window)
        except LandingFileError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error

        def read_chunks() -> Iterator[IngestedChunk]:
            batches = (
                batch for path in files for batch in read_file(spec.source, path, spec.column_names)
            )
            return ingest_partition(spec, batches, window, transform)

        run_logger(context).info("dataset_files", dataset=spec.name, files=[str(f) for f in files])
        return dg.Output(
            IngestedStream(read_chunks),
            metadata={
                "source_files": dg.MetadataValue.json(
                    [{"path": str(f), "bytes": f.stat().st_size} for f in files]
                )
            },
        )

    return dataset


DATASET_SPECS = load_specs(DATASETS_DIR)
dataset_assets = [build_dataset_asset(spec) for spec in DATASET_SPECS]
