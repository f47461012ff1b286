"""The guarded migration job: guard → pre-checks → baseline → forward → backfill → constraints →
post-validation → ledger. The default run is a dry run; ``confirm: true`` applies. The guard takes
the next migration of the chains that apply here (``lib/migrations/chains.py``: the sample's where
its datasets are declared, then the project's ``platform_assets/migrations/``), or else one planned
from a dataset spec its table no longer matches (``spec_changes``).

Any failure after the forward step runs the migration's ``down``, verifies the table is back to its
baseline (columns, row count, null counts, checksum) and fails the run saying so.
"""

import dagster as dg

from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.defs.migrations.ops import (
    backfill,
    baseline,
    constraints,
    forward,
    guard,
    post_validate,
    pre_checks,
    record,
)
from platform_assets.defs.migrations.plan import STATE_IO_MANAGER
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.migrations.chains import ChainedMigrations, chained_migrations
from platform_assets.lib.migrations.model import Migration


@dg.job(
    name="migrate",
    description=(
        "The guarded migration job: guard, pre-checks, baseline, forward, backfill, constraints,"
        " post-validation, ledger. The default run is a dry run; `confirm: true` in the guard's"
        " config applies. Any failure after the forward step runs the migration's `down`, verifies"
        " the table is back to its baseline (columns, row count, null counts, checksum) and fails"
        " the run saying so."
    ),
    executor_def=dg.in_process_executor,  # the lock lives on one connection in one process
    tags={"dagster/max_retries": "0"},
)
def migrate_job() -> None:
    record(post_validate(constraints(backfill(forward(baseline(pre_checks(guard())))))))


def migration_resources(
    migrations: list[Migration] | None = None, dataset_specs: list[DatasetSpec] | None = None
) -> dict[str, object]:
    """The job's own resources: the migrations to apply (by default the chains' that apply to
    the declared datasets), the dataset specs to plan migrations from, and the in-memory plan
    hand-over."""
    specs = DATASET_SPECS if dataset_specs is None else dataset_specs
    chained = (
        chained_migrations([spec.name for spec in specs])
        if migrations is None
        else ChainedMigrations.of(migrations)
    )
    return {
        "migrations": dg.ResourceDefinition.hardcoded_resource(
            chained,
            "The migrations of the chains that apply here (the project's"
            " platform_assets/migrations/, the sample's where its datasets are declared),"
            " in order.",
        ),
        "dataset_specs": dg.ResourceDefinition.hardcoded_resource(
            specs,
            "The dataset specs whose tables' differences plan migrations (spec_changes).",
        ),
        STATE_IO_MANAGER: dg.mem_io_manager,
    }
