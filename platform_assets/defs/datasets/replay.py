"""The ``replay_dead_letters`` job: patch, revalidate and load dead letters of a dataset.

Launched from the UI's launchpad (or ``dagster job launch``) with the dataset, the partitions,
statuses and letters to take (every queued letter of the dataset, of chosen partitions, or chosen
letter ids), and optional patches, each naming only the fields it changes. Each partition replays
in one transaction; the partitions that gained rows get a new materialisation event and are
checked again (the dataset's partition checks), so their downstream, gated on those checks,
follows by itself.
"""

from collections.abc import Iterator

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
from pydantic import Field, field_validator

from platform_assets.defs.datasets.checks import evaluations_after_change
from platform_assets.defs.datasets.columns import declared_column_schema
from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.defs.datasets.specs import dataset_field, spec_named
from platform_assets.defs.datasets.table_extracts import WHOLE_TABLE_WINDOW, table_source_of
from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.defs.resources import DEAD_LETTER_JOB_RESOURCES
from platform_assets.defs.retries import WAREHOUSE_RETRY_POLICY
from platform_assets.lib.dead_letters.observation import dead_letter_observation
from platform_assets.lib.dead_letters.replay_store import (
    Patch,
    ReplayError,
    ReplayKey,
    ReplayOutcome,
    queued_partitions,
    record_patches,
    replay_partition,
)
from platform_assets.lib.dead_letters.side_writes import UNRESOLVED
from platform_assets.lib.ingestion.replay import QueuedRecord, Revalidated, revalidate
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.io_manager.io_manager import column_schema
from platform_assets.lib.logging import run_logger
from platform_assets.lib.tables.schema import table_columns
from platform_assets.lib.tables.table_slice import TableSlice
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transient import permanent_unless_transient


class PatchConfig(dg.Config):
    """Corrected fields of one dead letter (as text; only those it changes: the others keep the
    stored payload's values), and who made it why."""

    dead_letter_id: int
    payload: dict[str, str] = Field(description="The fields it changes, as text: {field: value}")
    note: str = Field(min_length=1)
    author: str = Field(min_length=1)


class ReplayConfig(dg.Config):
    """Which dead letters to replay, and the patches to apply first."""

    dataset: str = dataset_field()
    partitions: list[str] = Field(default_factory=list, description="Empty: every partition")
    dead_letter_ids: list[int] = Field(
        default_factory=list,
        description="Only these letters (of the partitions chosen); empty: every queued letter",
    )
    statuses: list[str] = Field(default=list(UNRESOLVED), description=f"Any of {list(UNRESOLVED)}")

    @field_validator("statuses")
    @classmethod
    def _unresolved_only(cls, statuses: list[str]) -> list[str]:
        unknown = sorted(set(statuses) - set(UNRESOLVED))
        if unknown or not statuses:
            raise ValueError(f"statuses must be among {list(UNRESOLVED)}, got {statuses}")
        return statuses

    patches: list[PatchConfig] = Field(default_factory=list)


def _stored_schema(
    conn: adbc.Connection, spec: DatasetSpec, table_slice: TableSlice
) -> dg.TableSchema:
    cursor = conn.cursor()
    try:
        columns = table_columns(cursor, table_slice.schema, table_slice.table)
    finally:
        cursor.close()
    return column_schema(columns, {c.name: c for c in declared_column_schema(spec).columns})


def replay_key(spec: DatasetSpec) -> ReplayKey:
    """How replayed rows meet stored ones: by the unique key; an incremental extract's replayed
    row also replaces an older version of itself."""
    newer_by = table_source_of(spec).updated_at_column if spec.incremental else None
    return ReplayKey(spec.primary_key, spec.dedupe_key, newer_by)


def replay_window(spec: DatasetSpec, table_slice: TableSlice, key: str) -> PartitionWindow:
    """The window replayed rows must fall in: the partition's, or none for an extract's table."""
    if spec.incremental:
        return WHOLE_TABLE_WINDOW
    window = table_slice.partitions[0].window
    assert window is not None
    return PartitionWindow(key, window.start, window.end)


@dg.op(
    out=dg.Out(dg.Nothing),
    tags={"kind": "postgres"},
    pool=WAREHOUSE_POOL,
    retry_policy=WAREHOUSE_RETRY_POLICY,
)
def replay_dead_letters(
    context: dg.OpExecutionContext, config: ReplayConfig, warehouse: Warehouse
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.AssetObservation | dg.Output]:
    """Record the patches, then per partition: lock its queued dead letters, revalidate them with
    the current spec and code, load the rows that pass, and resolve or re-queue each letter.

    Each of these is one transaction, done again on a fresh connection after a transient error; a
    retried step records no patch twice and finds the partitions already replayed resolved."""
    spec = spec_named(config.dataset)
    asset_key = "/".join(spec.asset_key)
    transform = spec.transform_function()
    log = run_logger(context).bind(dataset=spec.name)
    patches = [Patch(p.dead_letter_id, p.payload, p.note, p.author) for p in config.patches]
    statuses = list(config.statuses)
    with permanent_unless_transient(f"replay of {spec.name}"):
        try:
            warehouse.retried(
                lambda conn: record_patches(conn, asset_key, patches, context.run_id), log
            )
        except ReplayError as error:
            raise dg.Failure(str(error), allow_retries=False) from error
        log.info("patches_recorded", count=len(patches))
        keys = warehouse.retried(
            lambda conn: queued_partitions(
                conn, asset_key, config.partitions, statuses, config.dead_letter_ids
            ),
            log,
        )
        outcomes = []
        for key in keys:
            table_slice = dataset_table_slice(spec, [key])
            partition = replay_window(spec, table_slice, key)

            def check(
                records: list[QueuedRecord], partition: PartitionWindow = partition
            ) -> Revalidated:
                return revalidate(spec, records, partition, transform)

            def replayed(conn: adbc.Connection, slice_: TableSlice = table_slice) -> ReplayOutcome:
                return replay_partition(
                    conn,
                    asset_key,
                    slice_,
                    replay_key(spec),
                    statuses,
                    check,
                    context.run_id,
                    config.dead_letter_ids,
                )

            outcome = warehouse.retried(replayed, log)
            outcomes.append(outcome)
            log.info(
                "partition_replayed",
                partition_key=key,
                replayed=outcome.replayed,
                resolved=outcome.resolved,
                still_failing=outcome.still_failing,
            )
            if outcome.resolved:
                schema = warehouse.retried(
                    lambda conn, s=table_slice: _stored_schema(conn, spec, s), log
                )
                yield dg.AssetMaterialization(
                    asset_key=spec.asset_key,
                    partition=None if spec.incremental else key,
                    description=f"{outcome.resolved} dead letter(s) replayed into the partition",
                    metadata={
                        "rows_replayed_in": outcome.resolved,
                        "replay_run_id": context.run_id,
                        # as every write records it, so the schema-change check compares alike
                        "dagster/column_schema": schema,
                    },
                )
                yield from evaluations_after_change(context, spec, warehouse, key)
        with warehouse.connection() as conn:
            yield dead_letter_observation(conn, asset_key)
    summary = {
        "replayed": sum(o.replayed for o in outcomes),
        "resolved": sum(o.resolved for o in outcomes),
        "still_failing": sum(o.still_failing for o in outcomes),
        "partitions": dg.MetadataValue.json([o.partition_key for o in outcomes]),
    }
    yield dg.Output(None, metadata=summary)


@dg.job(
    description=(
        "Replay a dataset's dead letters: apply audited patches, revalidate with the current code,"
        " load the rows that now pass into their partition, resolve them."
    ),
    tags={"team": "data-platform"},
    resource_defs=DEAD_LETTER_JOB_RESOURCES,
)
def replay_dead_letters_job() -> None:
    """One op: the replay (see ``replay_dead_letters``)."""
    replay_dead_letters()
