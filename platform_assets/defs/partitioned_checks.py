"""Partitioned asset checks that report one evaluation per partition, in range runs too.

Dagster records a partitioned check's ``AssetCheckResult`` against the run's single partition key;
a run over a range of partitions (a backfill under a ``BackfillPolicy``) would get one result with
no partition, and the UI could not tell which day failed. These checks evaluate every partition of
the run and report an ``AssetCheckEvaluation`` for each, pointing at that partition's latest
materialisation, so the per-partition status in the UI is exactly what was checked.
"""

from collections.abc import Callable, Iterator

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported at the top level in 1.13
)


def _latest_materialization(
    context: dg.AssetCheckExecutionContext | dg.OpExecutionContext,
    asset_key: dg.AssetKey,
    partition_key: str | None,
) -> AssetCheckEvaluationTargetMaterializationData | None:
    partitions = None if partition_key is None else [partition_key]
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=partitions), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def partition_evaluation(
    context: dg.AssetCheckExecutionContext | dg.OpExecutionContext,
    check_key: dg.AssetCheckKey,
    blocking: bool,
    partition_key: str | None,
    result: dg.AssetCheckResult,
) -> dg.AssetCheckEvaluation:
    """``result`` as the evaluation of ``check_key`` on ``partition_key`` (None: an
    unpartitioned asset), pointing at that partition's latest materialisation."""
    return dg.AssetCheckEvaluation(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=result.passed,
        metadata=result.metadata,
        target_materialization_data=_latest_materialization(
            context, check_key.asset_key, partition_key
        ),
        severity=result.severity,
        description=result.description,
        blocking=blocking,
        partition=partition_key,
    )


def evaluate_each_partition(
    context: dg.AssetCheckExecutionContext,
    check_key: dg.AssetCheckKey,
    blocking: bool,
    evaluate: Callable[[str], dg.AssetCheckResult],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """``evaluate`` each of the run's partitions and report it as that partition's evaluation.

    A blocking check failing with ERROR severity on any partition stops the run's downstream
    steps, as Dagster's own blocking checks do.
    """
    for partition_key in context.partition_keys:
        yield partition_evaluation(
            context, check_key, blocking, partition_key, evaluate(partition_key)
        )
    yield dg.Output(None)
