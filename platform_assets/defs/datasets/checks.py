"""Asset checks every declared dataset gets, evaluated per partition (range runs included), or
over the whole table of an incremental extract (``EXTRACT_CHECKS``, ``extract_checks``).

- ``rows_add_up`` (blocking): every row read is loaded or dead-lettered, and the tables agree.
- ``dead_letter_ratio`` (blocking past the error budget): few rows rejected.
- ``keys_valid`` (blocking): no repeated and no missing primary key among the stored rows.
- ``row_volume``: the row count against the median of the trailing partitions (WARN / ERROR).
- column schema changes between loads (Dagster's own check, fed by the IO manager's schema).
"""

from collections.abc import Callable, Iterator, Sequence

import dagster as dg

from platform_assets.defs.datasets.extract_checks import (
    SOURCE_ROWS_DESCRIPTION,
    source_rows_accounted,
)
from platform_assets.defs.datasets.partitions import dataset_partitions, dataset_table_slice
from platform_assets.defs.partitioned_checks import (
    evaluate_partitions,
    latest_materializations,
    partition_evaluation,
)
from platform_assets.lib.dead_letters.partition_audit import PartitionAudit, audit_partitions
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.quality.volume import judge_volume
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.partition_profile import key_faults, partition_row_counts
from platform_assets.lib.warehouse.resource import Warehouse


def _audits(
    spec: DatasetSpec, warehouse: Warehouse, partition_keys: Sequence[str]
) -> dict[str, PartitionAudit]:
    table_slice = dataset_table_slice(spec, partition_keys)
    with warehouse.bulk_connection() as conn:
        appended = spec.write_mode == "append" or spec.incremental
        return audit_partitions(conn, "/".join(spec.asset_key), table_slice, appended)


def _figures(audit: PartitionAudit) -> dict[str, object]:
    figures: dict[str, object] = {
        "rows_read": audit.rows_read,
        "rows_loaded": audit.rows_loaded,
        "rows_dead_lettered": audit.rows_dead_lettered,
        "rows_in_table": audit.rows_in_table,
        "unresolved_dead_letters": audit.unresolved_dead_letters,
        "dead_letter_ratio": round(audit.dead_letter_ratio, 6),
    }
    if audit.files:
        figures["data_lines"] = sum(file.data_lines for file in audit.files)
        figures["file_lines"] = dg.MetadataValue.json(
            [
                {
                    "file": file.source_file,
                    "data_lines": file.data_lines,
                    "lines_loaded": file.lines_loaded,
                    "lines_dead_lettered": file.lines_dead_lettered,
                    "dead_letter_lines_stored": file.dead_letter_lines_stored,
                }
                for file in audit.files
            ]
        )
    return figures


def _trailing_keys(spec: DatasetSpec, partition_key: str) -> list[str]:
    """The keys of up to ``volume.trailing_partitions`` partitions before ``partition_key``."""
    partitions_def = dataset_partitions(spec)
    start = partitions_def.time_window_for_partition_key(partition_key).start
    keys = []
    for _ in range(spec.volume.trailing_partitions):
        previous = partitions_def.get_prev_partition_window(start)
        if previous is None:
            break
        keys.append(previous.start.strftime(partitions_def.fmt))
        start = previous.start
    return keys


def rows_add_up(
    spec: DatasetSpec, warehouse: Warehouse, partition_keys: Sequence[str]
) -> dict[str, dg.AssetCheckResult]:
    """Fails if anything read is unaccounted for, or the stored rows disagree. An incremental
    extract upserts: its table holds at most the rows it loaded over all extracts (an update
    loads a row again), and ``source_rows_accounted`` checks each one against the source."""
    results = {}
    for key, audit in _audits(spec, warehouse, partition_keys).items():
        if spec.incremental:
            passed = audit.every_row_read_accounted_for and audit.rows_in_table <= audit.rows_loaded  # type: ignore[operator]
        else:
            passed = audit.adds_up
        results[key] = dg.AssetCheckResult(passed=passed, metadata=_figures(audit))
    return results


def dead_letter_ratio(
    spec: DatasetSpec, warehouse: Warehouse, partition_keys: Sequence[str]
) -> dict[str, dg.AssetCheckResult]:
    """Warns when the source sends more bad rows than ``max_dead_letter_ratio``; errs, and
    blocks downstream, past the error budget ``fail_dead_letter_ratio``."""
    results = {}
    for key, audit in _audits(spec, warehouse, partition_keys).items():
        over_budget = audit.dead_letter_ratio > spec.fail_dead_letter_ratio
        results[key] = dg.AssetCheckResult(
            passed=audit.dead_letter_ratio <= spec.max_dead_letter_ratio,
            severity=dg.AssetCheckSeverity.ERROR if over_budget else dg.AssetCheckSeverity.WARN,
            description=(
                f"{audit.rows_dead_lettered or 0} of {audit.rows_read or 0} rows dead-lettered"
                f" ({audit.dead_letter_ratio:.1%})"
            ),
            metadata={
                **_figures(audit),
                "max_dead_letter_ratio": spec.max_dead_letter_ratio,
                "fail_dead_letter_ratio": spec.fail_dead_letter_ratio,
                "top_rules_broken": dg.MetadataValue.json(audit.top_rules_broken),
            },
        )
    return results


def keys_valid(
    spec: DatasetSpec, warehouse: Warehouse, partition_keys: Sequence[str]
) -> dict[str, dg.AssetCheckResult]:
    """Fails if a stored row of the partition repeats another's unique key (primary or dedupe
    key) or lacks one."""
    with warehouse.bulk_connection() as conn:
        found = key_faults(conn, dataset_table_slice(spec, partition_keys), spec.unique_key)
    return {
        key: dg.AssetCheckResult(
            passed=faults.clean,
            description=(
                f"{faults.repeated_key_rows} row(s) share a key, {faults.null_key_rows} lack one,"
                f" of {faults.rows}"
            ),
            metadata={
                "rows": faults.rows,
                "repeated_key_rows": faults.repeated_key_rows,
                "null_key_rows": faults.null_key_rows,
                "unique_key": dg.MetadataValue.json(spec.unique_key),
            },
        )
        for key, faults in found.items()
    }


def row_volume(
    spec: DatasetSpec, warehouse: Warehouse, partition_keys: Sequence[str]
) -> dict[str, dg.AssetCheckResult]:
    """Warns, or errs, when the partition's row count strays from the trailing median."""
    trailing = {key: _trailing_keys(spec, key) for key in partition_keys}
    counted = sorted({*partition_keys, *(k for keys in trailing.values() for k in keys)})
    with warehouse.bulk_connection() as conn:
        counts = partition_row_counts(conn, dataset_table_slice(spec, counted))
    return {key: _volume_result(spec, counts, key, trailing[key]) for key in partition_keys}


def _volume_result(
    spec: DatasetSpec, counts: dict[str, int], key: str, trailing: list[str]
) -> dg.AssetCheckResult:
    """``row_volume``'s verdict on partition ``key`` from the counts of it and its trailing
    partitions."""
    volume = spec.volume
    verdict = judge_volume(
        counts[key],
        [counts[previous] for previous in trailing],
        volume.min_history,
        volume.warn_deviation,
        volume.error_deviation,
    )
    described = (
        f"{verdict.rows} rows; too little history ({verdict.history} partitions with rows)"
        if verdict.baseline is None
        else f"{verdict.rows} rows against a trailing median of {verdict.baseline:g}"
        f" ({verdict.deviation:.0%} off)"
    )
    return dg.AssetCheckResult(
        passed=verdict.outcome in ("ok", "unknown"),
        severity=(
            dg.AssetCheckSeverity.ERROR
            if verdict.outcome == "error"
            else dg.AssetCheckSeverity.WARN
        ),
        description=described,
        metadata={
            "rows": verdict.rows,
            "trailing_median": verdict.baseline,
            "deviation": verdict.deviation,
            "history_partitions": verdict.history,
            "warn_deviation": volume.warn_deviation,
            "error_deviation": volume.error_deviation,
        },
    )


# A partition check: how it evaluates partitions (all of a range at once), whether it blocks, its
# description (a template of the spec).
PartitionCheck = tuple[
    Callable[[DatasetSpec, Warehouse, Sequence[str]], dict[str, dg.AssetCheckResult]], bool, str
]
PARTITION_CHECKS: tuple[PartitionCheck, ...] = (
    (
        rows_add_up,
        True,
        "Rows read = loaded + dead-lettered for the partition, the table holds exactly the loaded"
        " rows and the dead-letter queue exactly the unresolved ones; each landing file's data"
        " lines (counted from its bytes) = the lines of its loaded rows + the lines of its stored"
        " dead letters.",
    ),
    (
        dead_letter_ratio,
        True,
        "At most {spec.max_dead_letter_ratio:.1%} of a partition's rows dead-lettered (a warning"
        " above); above {spec.fail_dead_letter_ratio:.1%} it is an error that stops downstream"
        " assets.",
    ),
    (
        keys_valid,
        True,
        "No two stored rows of the partition share a {spec.unique_key_label}, and none lacks one"
        " (counted in the database).",
    ),
    (
        row_volume,
        False,
        "The partition's row count against the median of the trailing partitions with rows: a"
        " warning {spec.volume.warn_deviation:.0%} off it, an error"
        " {spec.volume.error_deviation:.0%} off. Not blocking: an unusual day needs a person,"
        " not a halt.",
    ),
)


def _partitioned_check(
    spec: DatasetSpec,
    evaluate: Callable[[DatasetSpec, Warehouse, Sequence[str]], dict[str, dg.AssetCheckResult]],
    blocking: bool,
    description: str,
) -> dg.AssetChecksDefinition:
    check_key = dg.AssetCheckKey(dg.AssetKey(spec.asset_key), evaluate.__name__)

    @dg.asset_check(
        asset=check_key.asset_key,
        name=check_key.name,
        partitions_def=dataset_partitions(spec),
        blocking=blocking,
        description=description.format(spec=spec),
    )
    def check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        """Evaluates the run's partitions together (see the module docstring)."""
        yield from evaluate_partitions(
            context, check_key, blocking, lambda keys: evaluate(spec, warehouse, keys)
        )

    return check


def partition_checks_of(spec: DatasetSpec) -> list[PartitionCheck]:
    """The partition checks that apply to the dataset: all but ``keys_valid`` for a keyless one
    (it keeps every row, repeats included)."""
    return [check for check in PARTITION_CHECKS if spec.unique_key or check[0] is not keys_valid]


# An incremental extract's checks over its whole table: evaluated like a partition's, under the
# table's key, and described for a table whose figures add up over every extract.
EXTRACT_CHECKS: tuple[PartitionCheck, ...] = (
    (
        rows_add_up,
        True,
        "Over every extract: rows read = loaded + dead-lettered + discarded, the dead-letter queue"
        " holds exactly the unresolved ones, and the table at most the rows loaded (an update"
        " loads a row again).",
    ),
    (
        dead_letter_ratio,
        True,
        "At most {spec.max_dead_letter_ratio:.1%} of the rows read over every extract"
        " dead-lettered (a warning above); above {spec.fail_dead_letter_ratio:.1%} it is an"
        " error that stops downstream assets.",
    ),
    (
        keys_valid,
        True,
        "No two stored rows share a {spec.unique_key_label}, and none lacks one (counted in the"
        " database).",
    ),
)


def _whole_table_check(
    spec: DatasetSpec,
    name: str,
    evaluate: Callable[[DatasetSpec, Warehouse], dg.AssetCheckResult],
    blocking: bool,
    description: str,
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(spec.asset_key),
        name=name,
        blocking=blocking,
        description=description.format(spec=spec, updated_at=spec.source.updated_at_column),  # type: ignore[union-attr]
    )
    def check(warehouse: Warehouse) -> dg.AssetCheckResult:
        """Evaluates the whole table (see the module docstring)."""
        return evaluate(spec, warehouse)

    return check


def _extract_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    """An incremental extract's checks: ``EXTRACT_CHECKS`` and its source's rows accounted for."""
    return [
        *(
            _whole_table_check(
                spec,
                evaluate.__name__,
                lambda s, w, partition_check=evaluate: partition_check(s, w, [WHOLE_TABLE])[
                    WHOLE_TABLE
                ],
                blocking,
                description,
            )
            for evaluate, blocking, description in EXTRACT_CHECKS
        ),
        _whole_table_check(
            spec,
            source_rows_accounted.__name__,
            source_rows_accounted,
            True,
            SOURCE_ROWS_DESCRIPTION,
        ),
    ]


def evaluations_after_change(
    context: dg.OpExecutionContext, spec: DatasetSpec, warehouse: Warehouse, partition_key: str
) -> Iterator[dg.AssetCheckEvaluation]:
    """The dataset's checks evaluated again on a partition (or an extract's table) that changed
    outside a load, as a load would have: downstream automation, gated on them, sees the new
    content verified."""
    asset_key = dg.AssetKey(spec.asset_key)
    checks = EXTRACT_CHECKS if spec.incremental else tuple(partition_checks_of(spec))
    evaluated = [
        (evaluate.__name__, blocking, evaluate(spec, warehouse, [partition_key])[partition_key])
        for evaluate, blocking, _ in checks
    ]
    if spec.incremental:
        evaluated.append(
            (source_rows_accounted.__name__, True, source_rows_accounted(spec, warehouse))
        )
    key = None if spec.incremental else partition_key
    target = latest_materializations(context.instance, asset_key, [key]).get(key)
    for name, blocking, result in evaluated:
        check_key = dg.AssetCheckKey(asset_key, name)
        yield partition_evaluation(check_key, blocking, key, result, target)


def build_dataset_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    """The checks of one dataset: per partition (or over the table of an incremental extract),
    and its column schema between loads."""
    if spec.incremental:
        checks = _extract_checks(spec)
    else:
        checks = [
            _partitioned_check(spec, evaluate, *about)
            for evaluate, *about in partition_checks_of(spec)
        ]
    return [*checks, *dg.build_column_schema_change_checks(assets=[dg.AssetKey(spec.asset_key)])]
