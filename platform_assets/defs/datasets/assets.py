"""Assets built from the dataset specs in ``platform_assets/datasets/*.yaml``.

Each spec of files or an API becomes one time-partitioned asset that streams the run's partitions
(one, or a backfill's range) of source data through parsing, validation and the spec's transform
into the Postgres IO manager, which writes the good rows, the dead letters and each partition's
accounting in one transaction; a table source becomes an incremental extract (``table_extracts``).
See docs/datasets.md.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from platform_assets.defs.datasets.asset_options import dataset_asset_options, dataset_metadata
from platform_assets.defs.datasets.landing import landing_asset_key
from platform_assets.defs.datasets.partitions import (
    dataset_backfill_policy,
    dataset_partitions,
    dataset_table_slice,
    partition_windows,
)
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.defs.datasets.table_extracts import build_table_extract_asset
from platform_assets.lib.ingestion.pipeline import (
    ingest_partition,
    landing_files,
    landing_objects,
    read_file,
    read_object,
    unique_key_tracker,
)
from platform_assets.lib.ingestion.result import IngestedChunk, IngestedStream
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.io_manager.keys_elsewhere import keys_elsewhere_lookup
from platform_assets.lib.logging import run_logger
from platform_assets.lib.sources.http_json import HttpJsonSource, stream_http_json
from platform_assets.lib.sources.landing_readers import (
    LandingFileError,
    LandingFilesSource,
    RawBatch,
)
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.transient import permanent_unless_transient


def _source_batches(
    spec: DatasetSpec, context: dg.AssetExecutionContext, window: PartitionWindow
) -> tuple[Callable[[], Iterator[RawBatch]], dict[str, list]]:
    """How to read one partition's source from the start, and plain data saying what it is.

    Landing files are listed now, so a missing delivery fails before anything is written.
    """
    source = spec.source
    if isinstance(source, HttpJsonSource):
        url = source.url.replace("{date}", window.key)
        return lambda: stream_http_json(
            source, window.key, spec.source_column_names, spec.json_paths
        ), {"source_urls": [url]}
    landing: LandingZone = context.resources.landing
    store = landing.object_store()
    if store is not None:
        objects = landing_objects(source, store, window)

        def object_batches() -> Iterator[RawBatch]:
            for landed in objects:
                yield from read_object(spec, store, landed)

        described = [
            {"path": store.object_url(source.directory, o.name), "bytes": o.size} for o in objects
        ]
        return object_batches, {"source_files": described}
    files = landing_files(source, Path(landing.directory), window)

    def batches() -> Iterator[RawBatch]:
        for path in files:
            yield from read_file(spec, path)

    described = [{"path": str(f), "bytes": f.stat().st_size} for f in files]
    return batches, {"source_files": described}


def _sources_of_run(
    spec: DatasetSpec, context: dg.AssetExecutionContext, windows: list[PartitionWindow]
) -> tuple[list[tuple[PartitionWindow, Callable[[], Iterator[RawBatch]]]], dict[str, dict]]:
    """Every partition's source, listed before anything is read (a range run missing any day's
    delivery fails naming every missing day, not only the first), and what each partition reads
    (its files or URL), by partition key."""
    sources, described, missing = [], {}, []
    for window in windows:
        try:
            batches, about = _source_batches(spec, context, window)
        except LandingFileError as error:
            missing.append(str(error))
            continue
        sources.append((window, batches))
        described[window.key] = about
    if missing:
        raise LandingFileError("; ".join(missing))
    return sources, described


def build_dataset_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The asset a dataset spec declares: one run loads one partition, or a range of them (a
    backfill) in one transaction; a table source's run extracts what changed since the last."""
    if spec.incremental:
        return build_table_extract_asset(spec)
    transform = spec.transform_function()
    from_files = isinstance(spec.source, LandingFilesSource)

    @dg.asset(
        **dataset_asset_options(spec),
        deps=[landing_asset_key(spec)] if from_files else [],
        partitions_def=dataset_partitions(spec),
        backfill_policy=dataset_backfill_policy(spec),
        kinds={"postgres", spec.source.format if from_files else "json"},
        required_resource_keys={"landing", "warehouse"} if from_files else {"warehouse"},
        metadata={
            **dataset_metadata(spec),
            "partition_column": spec.partition_column,
            # A dedupe key is looked up in every load: indexed, though not the table's key.
            "indexes": [spec.dedupe_key] if spec.dedupe_key else [],
        },
    )
    def dataset(context: dg.AssetExecutionContext) -> dg.Output[IngestedStream]:
        """The run's partitions of source data, streamed through the spec's validation into the
        warehouse with their dead letters and accounting."""
        with permanent_unless_transient(f"dataset {spec.name}: the run's partitions"):
            windows = partition_windows(spec, context.partition_keys)  # a range may not exist
        what = f"dataset {spec.name} partitions {windows[0].key}..{windows[-1].key}"
        with permanent_unless_transient(what):
            sources, described = _sources_of_run(spec, context, windows)
            log = run_logger(context)
            # One line per partition for a single one; a range's are at debug level beside one
            # summary (each day's page shows its own sources).
            emit = log.info if len(described) == 1 else log.debug
            if len(described) > 1:
                log.info("dataset_sources", dataset=spec.name, partitions=len(described))
            for key, about in described.items():
                emit("dataset_source", dataset=spec.name, partition_key=key, **about)
                context.add_asset_metadata(
                    {name: dg.MetadataValue.json(values) for name, values in about.items()},
                    partition_key=key,
                )

        def read_chunks() -> Iterator[IngestedChunk]:
            # Looked up afresh on every (re)read: a retried write sees what committed since.
            keys_elsewhere = (
                keys_elsewhere_lookup(
                    context.resources.warehouse,
                    dataset_table_slice(spec, context.partition_keys),
                    spec.unique_key,
                )
                if spec.unique_key
                else None
            )
            taken = unique_key_tracker(spec)
            for window, batches in sources:
                yield from ingest_partition(
                    spec, batches(), window, transform, keys_elsewhere, keys=taken
                )

        return dg.Output(IngestedStream(read_chunks))

    return dataset


dataset_assets = [build_dataset_asset(spec) for spec in DATASET_SPECS]
