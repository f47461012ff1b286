"""Each landing-file dataset's files, shown in the asset graph as an external, observed source.

Dagster cannot materialise these (the source system drops them), but the landing-file sensor
records an observation for every day whose files settled or changed, with a data version from
the files' content: the UI then shows which days have data, and marks a loaded day stale once
its files change.
"""

import dagster as dg

from platform_assets.defs.datasets.partitions import dataset_partitions
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_readers import LandingFilesSource


def landing_asset_key(spec: DatasetSpec) -> dg.AssetKey:
    """The key of the dataset's landing files in the asset graph."""
    return dg.AssetKey(["landing", spec.name])


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
        group_name=spec.group,
        kinds={source.format},
        owners=spec.owners,
    )


def landing_observation(spec: DatasetSpec, day: str, fingerprint: str) -> dg.AssetObservation:
    """An observation of one day's settled files, versioned by their content."""
    return dg.AssetObservation(
        asset_key=landing_asset_key(spec),
        partition=day,
        tags={"dagster/data_version": fingerprint},
        metadata={"content_fingerprint": fingerprint},
    )


LANDING_FILES = [
    landing_files_spec(spec)
    for spec in DATASET_SPECS
    if isinstance(spec.source, LandingFilesSource)
]
