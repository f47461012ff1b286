"""The declared datasets: every spec under ``platform_assets/datasets/``, loaded once.

Everything built from a spec (asset, checks, landing source, load job, schedule, sensors, the
replay, discard and export launchpads) looks datasets up here.
"""

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from platform_assets.lib.ingestion.spec import DatasetSpec, load_specs

DATASETS_DIR = Path(__file__).resolve().parents[2] / "datasets"

DATASET_SPECS = load_specs(DATASETS_DIR)
SPECS_BY_NAME = {spec.name: spec for spec in DATASET_SPECS}


def dataset_field() -> Any:
    """The ``dataset`` field of a launchpad config, required: the launchpad asks which dataset
    (naming them all) rather than opening on one that may have nothing to replay, export or
    discard."""
    return Field(description=f"Which dataset: one of {sorted(SPECS_BY_NAME)}")


def spec_named(name: str) -> DatasetSpec:
    """The declared dataset called ``name``; a run given an unknown one fails saying which exist."""
    spec = SPECS_BY_NAME.get(name)
    if spec is None:
        raise dg.Failure(f"unknown dataset {name!r}; known: {sorted(SPECS_BY_NAME)}")
    return spec
