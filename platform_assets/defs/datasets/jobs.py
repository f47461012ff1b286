"""Each dataset's load job: its asset and its checks, for one partition or a range.

What the dataset's schedule and landing-file sensor launch; downstream assets follow by their
automation conditions once the checks pass.
"""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # what define_asset_job returns; not exported at the top level
)

from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.ingestion.spec import DatasetSpec


def load_job_name(spec: DatasetSpec) -> str:
    """The name of the dataset's load job."""
    return f"load_{spec.name}"


def build_load_job(spec: DatasetSpec) -> UnresolvedAssetJobDefinition:
    """The job loading the dataset's partitions (with the dataset's checks)."""
    return dg.define_asset_job(
        load_job_name(spec),
        selection=dg.AssetSelection.assets(dg.AssetKey(spec.asset_key)),
        description=f"Load partitions of the {spec.name} dataset and run its checks.",
        tags={"dataset": spec.name},
    )


LOAD_JOBS = {spec.name: build_load_job(spec) for spec in DATASET_SPECS}
