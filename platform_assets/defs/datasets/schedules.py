"""Each dataset's schedule, declared in its spec (``schedule: {cron, timezone}``, or none).

A tick loads the last complete partition at the scheduled time (yesterday, for daily data), so
a tick missed and caught up later still loads the day it was meant for; a table source's tick
extracts what changed since the last extract.
"""

from typing import Any

import dagster as dg

from platform_assets.defs.datasets.jobs import LOAD_JOBS
from platform_assets.defs.datasets.partitions import dataset_partitions
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.ingestion.spec import DatasetSpec


def _schedule_options(spec: DatasetSpec, description: str) -> dict[str, Any]:
    declared = spec.schedule
    assert declared is not None
    return {
        "name": f"{spec.name}_schedule",
        "cron_schedule": declared.cron,
        "execution_timezone": declared.timezone,
        "job": LOAD_JOBS[spec.name],
        "default_status": (
            dg.DefaultScheduleStatus.RUNNING
            if declared.running
            else dg.DefaultScheduleStatus.STOPPED
        ),
        "description": f"{description} at {declared.cron} ({declared.timezone}).",
    }


def build_extract_schedule(spec: DatasetSpec) -> dg.ScheduleDefinition:
    """The schedule of an incremental table extract: each tick extracts what changed since."""

    @dg.schedule(**_schedule_options(spec, f"Extracts what changed in {spec.name}"))
    def extract_changes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Requests one extract per tick (its run key: the tick's time)."""
        return dg.RunRequest(run_key=f"{spec.name}:{context.scheduled_execution_time.isoformat()}")

    return extract_changes


def build_dataset_schedule(spec: DatasetSpec) -> dg.ScheduleDefinition:
    """The schedule of a dataset whose spec declares one."""
    if spec.incremental:
        return build_extract_schedule(spec)
    partitions_def = dataset_partitions(spec)

    @dg.schedule(**_schedule_options(spec, f"Loads the previous complete {spec.name} partition"))
    def load_previous_partition(
        context: dg.ScheduleEvaluationContext,
    ) -> dg.RunRequest | dg.SkipReason:
        """Requests the last partition complete at the scheduled time, once (its run key)."""
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            key = partitions_def.get_last_partition_key()
        if key is None:
            return dg.SkipReason(f"no complete {spec.name} partition yet")
        return dg.RunRequest(run_key=f"{spec.name}:{key}", partition_key=key)

    return load_previous_partition


DATASET_SCHEDULES = [build_dataset_schedule(spec) for spec in DATASET_SPECS if spec.schedule]
