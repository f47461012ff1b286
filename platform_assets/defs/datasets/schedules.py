"""Each dataset's schedule, declared in its spec (``schedule: {cron, timezone}``, or none).

A tick loads the last complete partition at the scheduled time (yesterday, for daily data), so
a tick missed and caught up later still loads the day it was meant for.
"""

import dagster as dg

from platform_assets.defs.datasets.jobs import LOAD_JOBS
from platform_assets.defs.datasets.partitions import dataset_partitions
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.ingestion.spec import DatasetSpec


def build_dataset_schedule(spec: DatasetSpec) -> dg.ScheduleDefinition:
    """The schedule of a dataset whose spec declares one."""
    declared = spec.schedule
    assert declared is not None
    partitions_def = dataset_partitions(spec)

    @dg.schedule(
        name=f"{spec.name}_schedule",
        cron_schedule=declared.cron,
        execution_timezone=declared.timezone,
        job=LOAD_JOBS[spec.name],
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if declared.running
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"Loads the previous complete {spec.name} partition at {declared.cron}"
        f" ({declared.timezone}).",
    )
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
