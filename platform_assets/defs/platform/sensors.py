"""The platform's own sensors: alerts about the dead-letter queue and about failed runs.

Both speak through the ``notifier`` resource (a webhook when ``PLATFORM_ALERT_WEBHOOK_URL`` is
set, else the log), so where alerts go is chosen in one place.
"""

import json

import dagster as dg

from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.dead_letters.queue_summary import over_budget, top_rules
from platform_assets.lib.dead_letters.side_writes import TOP_RULES
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.notifications.notifier import Notifier, alert
from platform_assets.lib.warehouse.resource import Warehouse

# The error budget of ingesting assets that are not declared datasets: a spec's default.
DEFAULT_BUDGET = DatasetSpec.model_fields["max_dead_letter_ratio"].default
BUDGETS = {"/".join(spec.asset_key): spec.max_dead_letter_ratio for spec in DATASET_SPECS}


@dg.sensor(
    name="dead_letter_growth",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Alerts when a dataset's unresolved dead letters exceed its error budget"
        " (max_dead_letter_ratio of the rows read) in more partitions than at its last alert;"
        " quiet while they do not, and forgets a dataset back within budget everywhere."
    ),
)
def dead_letter_growth(
    context: dg.SensorEvaluationContext, warehouse: Warehouse, notifier: Notifier
) -> dg.SensorResult:
    """Sends one alert per dataset with more partitions over its error budget than it last
    alerted about; the tick's reason says what it sent.

    A budget, not a count: the sample data's normal 1% damage over hundreds of days is thousands
    of letters, and nothing to wake anyone for; a day with a fifth of its rows refused is.
    """
    alerted: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    with warehouse.connection() as conn:
        over = over_budget(conn, BUDGETS, DEFAULT_BUDGET)
        sent = []
        for dataset in over:
            if dataset.partitions <= alerted.get(dataset.asset_key, 0):
                continue
            budget = BUDGETS.get(dataset.asset_key, DEFAULT_BUDGET)
            summary = (
                f"{dataset.asset_key}: {dataset.partitions} partition(s) with more unresolved"
                f" dead letters than the error budget of {budget:.1%} of the rows read"
                f" ({dataset.unresolved} letters)"
            )
            notifier.notify(
                alert(
                    "dead_letters_growing",
                    summary,
                    asset_key=dataset.asset_key,
                    partitions_over_budget=dataset.partitions,
                    unresolved=dataset.unresolved,
                    budget=budget,
                    worst_partitions=dataset.worst,
                    top_rules_broken=top_rules(conn, dataset.asset_key, TOP_RULES),
                )
            )
            alerted[dataset.asset_key] = dataset.partitions
            sent.append(summary)
    # Forget a dataset back within budget everywhere: going over it again alerts again.
    alerted = {d.asset_key: alerted[d.asset_key] for d in over if d.asset_key in alerted}
    reason = (
        f"alerted: {'; '.join(sent)}"
        if sent
        else "no dataset has more partitions over its dead-letter budget than last alerted"
    )
    context.log.info(reason)
    return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=json.dumps(alerted))


# Dagster's own tags are noise in an alert, except those saying which partitions the run loaded.
_PARTITION_TAGS = ("dagster/partition", "dagster/asset_partition_range")
_SYSTEM_TAGS = ("dagster/", ".dagster")


def _reported_tag(key: str) -> bool:
    return key.startswith(_PARTITION_TAGS) or not key.startswith(_SYSTEM_TAGS)


@dg.run_failure_sensor(
    name="run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports every failed run of this code location through the notifier.",
)
def run_failures(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
    """Sends one alert per failed run: job, run id, partition tags and the failure message."""
    run = context.dagster_run
    notifier.notify(
        alert(
            "run_failed",
            f"run {run.run_id} of {run.job_name} failed",
            run_id=run.run_id,
            job_name=run.job_name,
            message=context.failure_event.message or "",
            tags={key: value for key, value in run.tags.items() if _reported_tag(key)},
        )
    )
