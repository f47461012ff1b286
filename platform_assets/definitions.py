"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from platform_assets.defs import resources
from platform_assets.defs.crm import assets as crm_assets
from platform_assets.defs.datasets.assets import DATASET_SPECS, dataset_assets
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.export import export_dead_letters_job
from platform_assets.defs.datasets.replay import replay_dead_letters_job
from platform_assets.defs.migrations.jobs import migrate_job, migration_resources
from platform_assets.defs.platform.assets import dead_letter_records, ingestion_accounting
from platform_assets.defs.sales import assets as sales_assets

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([sales_assets, crm_assets]),
            *dataset_assets,
            dead_letter_records,
            ingestion_accounting,
        ],
        asset_checks=[check for spec in DATASET_SPECS for check in build_dataset_checks(spec)],
        jobs=[replay_dead_letters_job, export_dead_letters_job],
    ),
    dg.Definitions(jobs=[migrate_job], resources=migration_resources()),
    resources.defs,
)
