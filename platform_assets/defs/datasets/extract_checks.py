"""The check only an incremental table extract has: the source's rows are all accounted for.

Counted from the source table itself, independently of the extract's reader and accounting:
every source row up to the committed high-water mark is stored at the version the source holds,
or waits as an unresolved dead letter. A mark ahead of the stored rows (a change that would be
skipped), a lost chunk or a row stored at another version fails it, naming keys; so does a source
row with no ``updated_at`` (or no key), which no extract can ever take.
"""

import dagster as dg

from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.defs.datasets.table_extracts import checkpoint_name, table_source_of
from platform_assets.lib.dead_letters.extract_audit import audit_extract
from platform_assets.lib.dead_letters.side_writes import read_checkpoint
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.warehouse.resource import Warehouse

SOURCE_ROWS_DESCRIPTION = (
    "Every row of the source table up to the committed high-water mark is stored at the version"
    " the source holds (same {updated_at}), or waits as an unresolved dead letter, and every"
    " row has an {updated_at} and a key, without which no extract can take it: counted in the"
    " source, independently of the extract."
)


def source_rows_accounted(spec: DatasetSpec, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Fails if a source row the checkpoint has passed is neither stored as it is nor
    dead-lettered, or if a source row is out of every extract's reach (no mark)."""
    source = table_source_of(spec)
    with warehouse.connection() as conn:
        mark = read_checkpoint(conn, checkpoint_name(spec))
    if mark is None:
        return dg.AssetCheckResult(passed=True, description="no extract committed yet")
    target = dataset_table_slice(spec, [])
    with source.database(warehouse) as database:
        audit = audit_extract(
            source,
            database,
            mark,
            warehouse,
            (target.schema, target.table),
            "/".join(spec.asset_key),
        )
    unreachable = ""
    if audit.unmarked:
        unreachable = (
            f"; {audit.unmarked} source rows have no {source.updated_at_column} or no"
            f" {source.key_column}, so no extract takes them: give each a key and an"
            f" {source.updated_at_column} of now() and the next extract will"
        )
    deleted = ""
    if audit.deleted_in_source:
        deleted = (
            f"; {audit.deleted_in_source} stored rows were deleted in the source since (an"
            f" extract by {source.updated_at_column} cannot see deletes): see"
            f" deleted_in_source_keys"
        )
    return dg.AssetCheckResult(
        passed=audit.adds_up,
        description=(
            f"{audit.source_rows} source rows up to the mark: {audit.stored} stored as they are,"
            f" {audit.dead_lettered} dead-lettered{unreachable}{deleted}"
        ),
        metadata={
            "high_water": dg.MetadataValue.json(mark),
            "source_rows": audit.source_rows,
            "stored": audit.stored,
            "dead_lettered": audit.dead_lettered,
            "missing_keys": dg.MetadataValue.json(audit.missing),
            "other_version_keys": dg.MetadataValue.json(audit.other_version),
            "unmarked_rows": audit.unmarked,
            "unmarked_keys": dg.MetadataValue.json(audit.unmarked_keys),
            "deleted_in_source": audit.deleted_in_source,
            "deleted_in_source_keys": dg.MetadataValue.json(audit.deleted_in_source_keys),
        },
    )
