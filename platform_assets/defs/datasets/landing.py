"""Each landing-file dataset's files, shown in the asset graph as an external source.

Dagster cannot materialise these (the source system drops them), but the landing-file sensor
reports a materialisation of every day whose files settled or changed (a runless event, as Dagster
records external assets), with a data version from the files' content: the asset's partitions
then show which days landed, and a loaded day whose files change shows as stale downstream. They
sit in their own ``landing`` group, named ``<dataset>_files``, apart from the datasets.
"""

import dagster as dg

from platform_assets.defs.datasets.partitions import dataset_partitions
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_readers import LandingFilesSource

LANDING_GROUP = "landing"


def landing_asset_key(spec: DatasetSpec) -> dg.AssetKey:
    """The key of the dataset's landing files in the asset graph."""
    return dg.AssetKey(["landing", f"{spec.name}_files"])


def landing_files_spec(spec: DatasetSpec) -> dg.AssetSpec:
    """The external asset standing for the dataset's landing files, one partition per day."""
    source = spec.source
    assert isinstance(source, LandingFilesSource)
    return dg.AssetSpec(
        key=landing_asset_key(spec),
        description=(
            f"The {spec.name} files dropped in the landing zone ({source.directory}/"
            f"{source.pattern}); observed by the {spec.name}_landing_files sensor."
        ),
        partitions_def=dataset_partitions(spec),
        group_name=LANDING_GROUP,
        kinds={source.format},
        owners=spec.owners,
    )


def landing_materialization(
    spec: DatasetSpec, day: str, fingerprint: str
) -> dg.AssetMaterialization:
    """One day's files landed (settled, or changed since), versioned by their content."""
    return dg.AssetMaterialization(
        asset_key=landing_asset_key(spec),
        partition=day,
        tags={"dagster/data_version": fingerprint},
        metadata={"content_fingerprint": fingerprint},
    )


def unloaded_observation(spec: DatasetSpec, unloaded: dict[str, str]) -> dg.AssetObservation:
    """The files the sensor sees but does not load, and why (a file for a day that is not a
    partition yet, one still growing, one waiting for its marker, one refused): on the landing
    asset's page, not only in a tick's log."""
    return dg.AssetObservation(
        asset_key=landing_asset_key(spec),
        description=(
            f"{len(unloaded)} {spec.name} file(s) seen but not loaded"
            if unloaded
            else f"every {spec.name} file seen is loaded"
        ),
        metadata={
            "files_not_loaded": len(unloaded),
            "why": dg.MetadataValue.json(unloaded),
        },
    )


LANDING_FILES = [
    landing_files_spec(spec)
    for spec in DATASET_SPECS
    if isinstance(spec.source, LandingFilesSource)
]
