"""Partitioned asset checks that report one evaluation per partition, in range runs too.

Dagster records a partitioned check's ``AssetCheckResult`` against the run's single partition key;
a run over a range of partitions (a backfill under a ``BackfillPolicy``) would get one result with
no partition, and the UI could not tell which day failed. These checks evaluate every partition of
the run and report an ``AssetCheckEvaluation`` for each, pointing at that partition's latest
materialisation, so the per-partition status in the UI is exactly what was checked.

The range is evaluated as a whole: a check computes every partition's result in a fixed number of
queries (one ``GROUP BY`` partition pass), and the latest materialisations are looked up in two
instance queries, so a check's cost does not grow with one round of queries per partition.
"""

import functools
from collections.abc import Callable, Iterator, Sequence

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,  # not exported at the top level in 1.13
)

# Evaluates a check on partitions: {partition key: result} for each key it is given.
PartitionsEvaluation = Callable[[Sequence[str]], dict[str, dg.AssetCheckResult]]


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: Sequence[str | None]
) -> dict[str | None, AssetCheckEvaluationTargetMaterializationData]:
    """Each partition's latest materialisation (``None``: of an unpartitioned asset), in two
    instance queries whatever the number of partitions; a partition never materialised is
    absent."""
    partitions = {key for key in partition_keys if key is not None}
    storage_ids: dict[str | None, int] = {}
    if partitions:
        storage_ids.update(
            instance.event_log_storage.get_latest_storage_id_by_partition(
                asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions
            )
        )
    if None in partition_keys:
        unpartitioned = instance.fetch_materializations(asset_key, limit=1).records
        if unpartitioned:
            storage_ids[None] = unpartitioned[0].storage_id
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids),
    ).records
    by_id = {record.storage_id: record for record in records}
    return {
        key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=by_id[storage_id].storage_id,
            run_id=by_id[storage_id].run_id,
            timestamp=by_id[storage_id].timestamp,
        )
        for key, storage_id in storage_ids.items()
        if storage_id in by_id
    }


@functools.lru_cache(maxsize=8)
def _run_targets(
    instance: dg.DagsterInstance,
    run_id: str,
    asset_key: dg.AssetKey,
    partition_keys: tuple[str, ...],
) -> dict[str | None, AssetCheckEvaluationTargetMaterializationData]:
    """``latest_materializations`` once per run, asset and partitions: a run's checks of one
    asset all run after its materialisations (they depend on the asset's step), so they share
    one lookup instead of deserialising the same records once per check."""
    return latest_materializations(instance, asset_key, partition_keys)


def partition_evaluation(
    check_key: dg.AssetCheckKey,
    blocking: bool,
    partition_key: str | None,
    result: dg.AssetCheckResult,
    target: AssetCheckEvaluationTargetMaterializationData | None,
) -> dg.AssetCheckEvaluation:
    """``result`` as the evaluation of ``check_key`` on ``partition_key`` (None: an
    unpartitioned asset), pointing at ``target``, that partition's latest materialisation."""
    return dg.AssetCheckEvaluation(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=result.passed,
        metadata=result.metadata,
        target_materialization_data=target,
        severity=result.severity,
        description=result.description,
        blocking=blocking,
        partition=partition_key,
    )


def evaluate_partitions(
    context: dg.AssetCheckExecutionContext,
    check_key: dg.AssetCheckKey,
    blocking: bool,
    evaluate: PartitionsEvaluation,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """``evaluate`` the run's partitions at once and report each as that partition's evaluation.

    A blocking check failing with ERROR severity on any partition stops the run's downstream
    steps, as Dagster's own blocking checks do.
    """
    keys = list(context.partition_keys)
    results = evaluate(keys)
    run_id = context.run.run_id
    targets = _run_targets(context.instance, run_id, check_key.asset_key, tuple(keys))
    for key in keys:
        yield partition_evaluation(check_key, blocking, key, results[key], targets.get(key))
    yield dg.Output(None)
