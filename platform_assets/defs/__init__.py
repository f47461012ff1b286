"""What the Dagster UI shows, one folder per domain.

Four Dagster features the platform relies on on purpose are marked preview or beta in 1.13:
partitioned asset checks (one check result per partition), ``backfill_policy`` (a month's backfill
in one run), the column schema change checks and observable assets declared by ``AssetSpec``
(``multi_observable_source_asset``: each dataset's dead letters, downstream of it). Their
warnings are silenced here, before any definition is built, so that ``dagster dev`` and every run
log do not repeat them on each load.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*")
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
warnings.filterwarnings(
    "ignore", category=dg.BetaWarning, message=".*build_column_schema_change_checks.*"
)
warnings.filterwarnings(
    "ignore", category=dg.BetaWarning, message=".*multi_observable_source_asset.*"
)
