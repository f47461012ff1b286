"""The platform's own tables, shown in the asset graph downstream of the assets that fill them.

They are written by the IO manager in the same transaction as each ingested partition, so they
have no materialisation function of their own. Each dataset's dead letters are an observable
asset beside it: every load, replay and discard records an observation of them, and the UI's
*Observe* button takes one on demand, so their page shows when they were last looked at rather
than "Never materialized".
"""

from collections.abc import Iterator

import dagster as dg

from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.dead_letters.observation import dead_letter_observation, dead_letters_key
from platform_assets.lib.ingestion.spec import DatasetSpec

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


def build_dead_letters_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The dead letters of the dataset ``spec`` as an observable asset downstream of it, whose
    observation reads the letters as they stand in platform.dead_letter_records."""
    asset_key = "/".join(spec.asset_key)
    letters = dg.AssetSpec(
        key=dead_letters_key(asset_key),
        deps=[dg.AssetKey(spec.asset_key)],
        description=(
            f"The rows of {spec.name} that could not be loaded, as they stand in"
            " platform.dead_letter_records: observed after every load, replay and discard (and"
            " by the Observe button), with the letters per status (plotted), the partitions"
            " holding letters, the rules broken most and a sample with the ids to patch or"
            " discard."
        ),
        group_name=spec.group,
        kinds={"postgres"},
        owners=spec.owners or ["team:data-platform"],
        metadata={"dagster/table_name": "platform.dead_letter_records"},
    )

    @dg.multi_observable_source_asset(
        specs=[letters],
        name=f"{dead_letters_key(asset_key).to_python_identifier()}_observe",
        required_resource_keys={"warehouse"},
    )
    def observe_dead_letters(context: dg.AssetExecutionContext) -> Iterator[dg.ObserveResult]:
        """Observe the dataset's dead letters now: the same figures a load records."""
        with context.resources.warehouse.connection() as conn:
            observation = dead_letter_observation(conn, asset_key)
        yield dg.ObserveResult(asset_key=observation.asset_key, metadata=observation.metadata)

    return observe_dead_letters


DATASET_DEAD_LETTERS = [build_dead_letters_asset(spec) for spec in DATASET_SPECS]

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
