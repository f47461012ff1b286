"""A dataset's partitions, and how a run's partitions map to windows and table slices.

Defined once here from the spec, so the asset, its checks, its schedule, its sensors and the
replay job agree on what a partition is.
"""

from collections.abc import Sequence
from datetime import date, datetime, time

import dagster as dg

from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.tables.table_slice import (
    PartitionSlice,
    TableSlice,
    TimeRange,
    warehouse_table,
)


def _midnight(value: date | datetime) -> datetime:
    """A date means its midnight; either is local time in the partitions' zone."""
    return value if isinstance(value, datetime) else datetime.combine(value, time.min)


def dataset_partitions(spec: DatasetSpec) -> dg.TimeWindowPartitionsDefinition:
    """The spec's time partitions, in its time zone, from the first one that has data to the
    declared end, if any."""
    declared = spec.partitions
    assert declared is not None, f"dataset {spec.name} is not partitioned"
    common = {
        "start_date": _midnight(declared.start),
        "end_date": None if declared.end is None else _midnight(declared.end),
        "timezone": declared.timezone,
        "fmt": declared.format,
    }
    if declared.granularity == "hourly":
        return dg.HourlyPartitionsDefinition(**common)
    if declared.granularity == "weekly":
        return dg.WeeklyPartitionsDefinition(**common, day_offset=1)  # ISO weeks: from Monday
    if declared.granularity == "monthly":
        return dg.MonthlyPartitionsDefinition(**common)
    return dg.DailyPartitionsDefinition(**common)


def dataset_backfill_policy(spec: DatasetSpec) -> dg.BackfillPolicy:
    """A backfill in one run, or in runs of up to ``partitions.max_partitions_per_run`` days.

    A run of many partitions costs one run start and one transaction instead of one per day;
    downstream assets with the same policy join the same runs.
    """
    assert spec.partitions is not None, f"dataset {spec.name} is not partitioned"
    most = spec.partitions.max_partitions_per_run
    if most is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=most)


def partition_windows(spec: DatasetSpec, keys: Sequence[str]) -> list[PartitionWindow]:
    """The windows the rows of each partition ``keys`` must fall in, in key order."""
    partitions_def = dataset_partitions(spec)
    windows = [partitions_def.time_window_for_partition_key(key) for key in keys]
    return [
        PartitionWindow(key, window.start, window.end)
        for key, window in zip(keys, windows, strict=True)
    ]


def dataset_table_slice(spec: DatasetSpec, keys: Sequence[str]) -> TableSlice:
    """Where the partitions ``keys`` of the dataset live, as the IO manager writes them: the
    whole table for an unpartitioned dataset (its one key is ``WHOLE_TABLE``)."""
    schema, table = warehouse_table(spec.asset_key)
    if spec.partition_column is None:
        return TableSlice(schema, table)
    return TableSlice(
        schema=schema,
        table=table,
        partition_columns=(spec.partition_column,),
        partitions=tuple(
            PartitionSlice(window.key, TimeRange(window.start, window.end))
            for window in partition_windows(spec, keys)
        ),
    )
