"""The platform's own tables, shown in the asset graph downstream of the assets that fill them.

They are written by the IO manager in the same transaction as each ingested partition, so they
have no materialisation function of their own.
"""

import dagster as dg

from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.dead_letters.observation import dead_letters_key

# Every declared dataset: the assets that return ingestion results.
INGESTING_ASSETS = [dg.AssetKey(spec.asset_key) for spec in DATASET_SPECS]

dead_letter_records = dg.AssetSpec(
    key=["platform", "dead_letter_records"],
    deps=INGESTING_ASSETS,
    description=(
        "Every row an ingestion asset could not load, with its raw payload, file and line, stage,"
        " error and status (new, replaying, resolved, discarded). Written in the same transaction"
        " as the partition's good rows; re-running a partition replaces its unresolved rows."
        " Each dataset's letters are also an asset of their own, beside the dataset"
        " (<dataset>_dead_letters), observed after every load, replay and discard."
    ),
    group_name="platform",
    kinds={"postgres"},
    owners=["team:data-platform"],
    metadata={"dagster/table_name": "platform.dead_letter_records"},
)

DATASET_DEAD_LETTERS = [
    dg.AssetSpec(
        key=dead_letters_key("/".join(spec.asset_key)),
        deps=[dg.AssetKey(spec.asset_key)],
        description=(
            f"The rows of {spec.name} that could not be loaded, as they stand in"
            " platform.dead_letter_records: observed after every load, replay and discard, with"
            " the letters per status (plotted), the partitions holding letters, the rules broken"
            " most and a sample with the ids to patch or discard."
        ),
        group_name=spec.group,
        kinds={"postgres"},
        owners=spec.owners or ["team:data-platform"],
        metadata={"dagster/table_name": "platform.dead_letter_records"},
    )
    for spec in DATASET_SPECS
]

ingestion_accounting = dg.AssetSpec(
    key=["platform", "ingestion_accounting"],
    deps=INGESTING_ASSETS,
    description=(
        "Rows read, loaded and dead-lettered per ingested partition, committed with the partition;"
        " the table's CHECK makes read = loaded + dead-lettered hold for every row."
    ),
    group_name="platform",
    kinds={"postgres"},
    owners=["team:data-platform"],
    metadata={"dagster/table_name": "platform.ingestion_accounting"},
)
