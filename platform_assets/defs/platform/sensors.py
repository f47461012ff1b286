"""The platform's own sensors: alerts about the dead-letter queue and about failed runs.

Both speak through the ``notifier`` resource (a webhook when ``PLATFORM_ALERT_WEBHOOK_URL`` is
set, else the log), so where alerts go is chosen in one place.
"""

import json

import dagster as dg

from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.dead_letters.queue_summary import top_rules, unresolved_by_dataset
from platform_assets.lib.dead_letters.side_writes import TOP_RULES
from platform_assets.lib.notifications.notifier import Notifier, alert
from platform_assets.lib.warehouse.resource import Warehouse

DEFAULT_ALERT_THRESHOLD = 100  # for ingesting assets that are not declared datasets
THRESHOLDS = {"/".join(spec.asset_key): spec.dead_letter_alert_threshold for spec in DATASET_SPECS}


@dg.sensor(
    name="dead_letter_growth",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Alerts when a dataset's unresolved dead letters pass its dead_letter_alert_threshold,"
        " and again each time they grow further; quiet once they fall back under it."
    ),
)
def dead_letter_growth(
    context: dg.SensorEvaluationContext, warehouse: Warehouse, notifier: Notifier
) -> dg.SensorResult:
    """Sends one alert per dataset whose unresolved letters grew past its threshold."""
    alerted: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    with warehouse.connection() as conn:
        unresolved = unresolved_by_dataset(conn)
        sent = []
        for asset_key, count in sorted(unresolved.items()):
            threshold = THRESHOLDS.get(asset_key, DEFAULT_ALERT_THRESHOLD)
            if count <= threshold or count <= alerted.get(asset_key, 0):
                continue
            notifier.notify(
                alert(
                    "dead_letters_growing",
                    f"{asset_key}: {count} unresolved dead letters (threshold {threshold})",
                    asset_key=asset_key,
                    unresolved=count,
                    threshold=threshold,
                    top_rules_broken=top_rules(conn, asset_key, TOP_RULES),
                )
            )
            alerted[asset_key] = count
            sent.append(asset_key)
    # Forget a dataset that fell back under its threshold: growing past it again alerts again.
    alerted = {
        key: count
        for key, count in alerted.items()
        if unresolved.get(key, 0) > THRESHOLDS.get(key, DEFAULT_ALERT_THRESHOLD)
    }
    skip = None if sent else dg.SkipReason("no dataset's dead letters grew past its threshold")
    return dg.SensorResult(skip_reason=skip, cursor=json.dumps(alerted, sort_keys=True))


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
