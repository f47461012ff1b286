"""Assets built from the dataset specs in ``platform_assets/datasets/*.yaml``.

Each spec becomes one daily-partitioned asset that streams the day's landing files through
parsing, validation and the spec's transform into the Postgres IO manager, which writes the good
rows, the dead letters and the partition's accounting in one transaction (see docs/datasets.md).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from platform_assets.lib.ingestion.pipeline import ingest_partition, landing_files, read_file
from platform_assets.lib.ingestion.result import IngestedChunk, IngestedStream
from platform_assets.lib.ingestion.spec import DatasetSpec, load_specs
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.io_manager.keys_elsewhere import keys_elsewhere_lookup
from platform_assets.lib.logging import run_logger
from platform_assets.lib.sources.http_json import HttpJsonSource, stream_http_json
from platform_assets.lib.sources.landing_readers import LandingFilesSource, RawBatch
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice, TimeRange
from platform_assets.lib.warehouse.transient import permanent_unless_transient

DATASETS_DIR = Path(__file__).resolve().parents[2] / "datasets"
# Transient errors are retried inside the write (tenacity, exponential backoff with jitter); this
# retries a step that still failed on one, later. Every other error, in the asset as in the IO
# manager, is raised as ``dg.Failure(allow_retries=False)`` and never retried.
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


def _source_batches(
    spec: DatasetSpec, context: dg.AssetExecutionContext, window: PartitionWindow
) -> tuple[Callable[[], Iterator[RawBatch]], dict[str, object]]:
    """How to read the partition's source from the start, and plain data saying what it is.

    Landing files are listed now, so a missing delivery fails before anything is written.
    """
    source = spec.source
    if isinstance(source, HttpJsonSource):
        day = window.start.date().isoformat()
        url = source.url.replace("{date}", day)
        return lambda: stream_http_json(source, day, spec.column_names), {"source_url": url}
    landing: LandingZone = context.resources.landing
    files = landing_files(source, Path(landing.directory), window)

    def batches() -> Iterator[RawBatch]:
        for path in files:
            yield from read_file(source, path, spec.column_names)

    return batches, {"source_files": [{"path": str(f), "bytes": f.stat().st_size} for f in files]}


def build_dataset_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The asset a dataset spec declares."""
    transform = spec.transform_function()
    from_files = isinstance(spec.source, LandingFilesSource)

    @dg.asset(
        key=spec.asset_key,
        description=spec.description,
        partitions_def=dataset_partitions(spec),
        group_name=spec.group,
        owners=spec.owners,
        kinds={"postgres", spec.source.format if from_files else "json"},
        required_resource_keys={"landing", "warehouse"} if from_files else {"warehouse"},
        retry_policy=DATASET_RETRY_POLICY,
        metadata={
            "partition_column": spec.partition_column,
            "primary_key": spec.primary_key,
            "write_mode": spec.write_mode,
            "dataset": spec.name,
            "declared_columns": dg.MetadataValue.table_schema(_column_schema(spec)),
        },
    )
    def dataset(context: dg.AssetExecutionContext) -> dg.Output[IngestedStream]:
        """The partition's source data, streamed through the spec's validation into the
        warehouse with its dead letters and accounting."""
        window = partition_window(context)
        with permanent_unless_transient(f"dataset {spec.name} partition {window.key}"):
            batches, described = _source_batches(spec, context, window)
            run_logger(context).info("dataset_source", dataset=spec.name, **described)

        def read_chunks() -> Iterator[IngestedChunk]:
            # Looked up afresh on every (re)read: a retried write sees what committed since.
            keys_elsewhere = keys_elsewhere_lookup(
                context.resources.warehouse,
                dataset_table_slice(spec, window.key),
                spec.primary_key,
            )
            return ingest_partition(spec, batches(), window, transform, keys_elsewhere)

        metadata = {
            name: dg.MetadataValue.json(value) if isinstance(value, list) else value
            for name, value in described.items()
        }
        return dg.Output(IngestedStream(read_chunks), metadata=metadata)

    return dataset


DATASET_SPECS = load_specs(DATASETS_DIR)
SPECS_BY_NAME = {spec.name: spec for spec in DATASET_SPECS}


def spec_named(name: str) -> DatasetSpec:
    """The declared dataset called ``name``; a run given an unknown one fails saying which exist."""
    spec = SPECS_BY_NAME.get(name)
    if spec is None:
        raise dg.Failure(f"unknown dataset {name!r}; known: {sorted(SPECS_BY_NAME)}")
    return spec


dataset_assets = [build_dataset_asset(spec) for spec in DATASET_SPECS]
