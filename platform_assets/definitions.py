"""The code location: every domain's definitions merged with the shared resources.

Runs execute in process (one process per run, no process per step): a run's steps share the
warehouse pool and the code loaded once, so a one-partition run starts in seconds, and runs
themselves go in parallel under the run queue and the warehouse pool's limits (``dagster.yaml``).
On Kubernetes, ``PLATFORM_EXECUTOR=k8s_job`` gives each step a pod of its own instead.
"""

import dagster as dg

from platform_assets.defs import resources
from platform_assets.defs.automation import platform_automation
from platform_assets.defs.datasets.assets import dataset_assets
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.discard import discard_dead_letters_job
from platform_assets.defs.datasets.export import export_dead_letters_job
from platform_assets.defs.datasets.jobs import LOAD_JOBS
from platform_assets.defs.datasets.landing import LANDING_FILES
from platform_assets.defs.datasets.replay import replay_dead_letters_job
from platform_assets.defs.datasets.schedules import DATASET_SCHEDULES
from platform_assets.defs.datasets.sensors import LANDING_SENSORS
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.defs.migrations.jobs import migrate_job, migration_resources
from platform_assets.defs.platform.assets import (
    DATASET_DEAD_LETTERS,
    dead_letter_records,
    ingestion_accounting,
)
from platform_assets.defs.platform.sensors import dead_letter_growth, run_failures
from platform_assets.defs.sales import assets as sales_assets
from platform_assets.defs.sales import checks as sales_checks
from platform_assets.lib import settings


def run_executor() -> dg.ExecutorDefinition:
    """The in-process executor, or on Kubernetes with ``PLATFORM_EXECUTOR=k8s_job`` Dagster's
    ``k8s_job_executor`` (each step in a pod of its own; the warehouse pool still bounds them)."""
    if settings.executor() == "k8s_job":
        from dagster_k8s import k8s_job_executor  # the k8s extra: only on a cluster

        return k8s_job_executor
    if settings.executor() != "in_process":
        raise ValueError(f"{settings.EXECUTOR_VAR} must be in_process or k8s_job")
    return dg.in_process_executor


defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([sales_assets]),
            *LANDING_FILES,
            *dataset_assets,
            *DATASET_DEAD_LETTERS,
            dead_letter_records,
            ingestion_accounting,
        ],
        asset_checks=[
            *(check for spec in DATASET_SPECS for check in build_dataset_checks(spec)),
            *dg.load_asset_checks_from_modules([sales_checks]),
        ],
        jobs=[
            *LOAD_JOBS.values(),
            replay_dead_letters_job,
            discard_dead_letters_job,
            export_dead_letters_job,
        ],
        schedules=DATASET_SCHEDULES,
        sensors=[*LANDING_SENSORS, dead_letter_growth, run_failures, platform_automation],
        executor=run_executor(),
    ),
    dg.Definitions(jobs=[migrate_job], resources=migration_resources()),
    resources.defs,
)
