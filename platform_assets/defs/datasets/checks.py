"""Asset checks every declared dataset gets: its partitions add up, and few rows are rejected."""

import dagster as dg

from platform_assets.defs.datasets.assets import dataset_partitions, dataset_table_slice
from platform_assets.lib.dead_letters.partition_audit import PartitionAudit, audit_partition
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.warehouse.resource import Warehouse


def _audit(
    context: dg.AssetCheckExecutionContext, spec: DatasetSpec, warehouse: Warehouse
) -> PartitionAudit:
    table_slice = dataset_table_slice(spec, context.partition_key)
    with warehouse.bulk_connection() as conn:
        return audit_partition(conn, "/".join(spec.asset_key), table_slice)


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


def build_dataset_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    """The checks of one dataset, per partition."""
    partitions_def = dataset_partitions(spec)

    @dg.asset_check(
        asset=dg.AssetKey(spec.asset_key),
        name="rows_add_up",
        partitions_def=partitions_def,
        blocking=True,
        description=(
            "Rows read = loaded + dead-lettered for the partition, the table holds exactly the"
            " loaded rows and the dead-letter queue exactly the unresolved ones; each landing"
            " file's data lines (counted from its bytes) = the lines of its loaded rows + the"
            " lines of its stored dead letters."
        ),
    )
    def rows_add_up(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        """Fails if anything read is unaccounted for, or the stored rows disagree."""
        audit = _audit(context, spec, warehouse)
        return dg.AssetCheckResult(passed=audit.adds_up, metadata=_figures(audit))

    @dg.asset_check(
        asset=dg.AssetKey(spec.asset_key),
        name="dead_letter_ratio",
        partitions_def=partitions_def,
        blocking=True,
        description=(
            f"At most {spec.max_dead_letter_ratio:.1%} of a partition's rows dead-lettered (a"
            f" warning above); above {spec.fail_dead_letter_ratio:.1%} it is an error that"
            " stops downstream assets."
        ),
    )
    def dead_letter_ratio(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        """Warns when the source sends more bad rows than ``max_dead_letter_ratio``; fails, and
        blocks downstream, past the error budget ``fail_dead_letter_ratio``."""
        audit = _audit(context, spec, warehouse)
        over_budget = audit.dead_letter_ratio > spec.fail_dead_letter_ratio
        return dg.AssetCheckResult(
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

    return [rows_add_up, dead_letter_ratio]
