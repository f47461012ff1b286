"""The ``discard_dead_letters_job``: decide, on the record, that some dead letters will never load.

Launched from the UI's launchpad with the dataset, the ids of the letters (from the dead-letter
asset's sample, an export, or SQL), who decides and why. All of them are discarded in one
transaction, or none (see ``lib/dead_letters/discard_store``).
"""

from collections.abc import Iterator

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
from pydantic import Field

from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.defs.datasets.specs import dataset_field, spec_named
from platform_assets.defs.pools import WAREHOUSE_POOL
from platform_assets.defs.resources import DEAD_LETTER_JOB_RESOURCES
from platform_assets.defs.retries import WAREHOUSE_RETRY_POLICY
from platform_assets.lib.dead_letters.discard_store import (
    Discarded,
    DiscardError,
    discard_letters,
    partitions_of_letters,
)
from platform_assets.lib.dead_letters.observation import dead_letter_observation
from platform_assets.lib.logging import run_logger
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transient import permanent_unless_transient


class DiscardConfig(dg.Config):
    """Which dead letters to discard, who decides it, and why (all kept for audit)."""

    dataset: str = dataset_field()
    dead_letter_ids: list[int] = Field(default_factory=list, description="The letters' ids")
    note: str = Field(default="", description="Why these rows will never be loaded")
    author: str = Field(default="", description="Who decided it")


@dg.op(
    out=dg.Out(dg.Nothing),
    tags={"kind": "postgres"},
    pool=WAREHOUSE_POOL,
    retry_policy=WAREHOUSE_RETRY_POLICY,
)
def discard_dead_letters(
    context: dg.OpExecutionContext, config: DiscardConfig, warehouse: Warehouse
) -> Iterator[dg.AssetObservation | dg.Output]:
    """Discard the named unresolved letters, record who and why, and move them from
    dead-lettered to discarded in their partitions' accounting: one transaction, done again on a
    fresh connection after a transient error."""
    spec = spec_named(config.dataset)
    asset_key = "/".join(spec.asset_key)
    log = run_logger(context)
    if not config.note.strip() or not config.author.strip():
        raise dg.Failure("a discard needs a note (why) and an author (who)", allow_retries=False)

    def discard(conn: adbc.Connection) -> Discarded:
        partitions = partitions_of_letters(conn, asset_key, config.dead_letter_ids)
        table_slice = dataset_table_slice(spec, partitions) if partitions else None
        return discard_letters(
            conn,
            asset_key,
            config.dead_letter_ids,
            config.note,
            config.author,
            context.run_id,
            table_slice.lock_keys() if table_slice else [],
        )

    with permanent_unless_transient(f"discard of {spec.name} dead letters"):
        try:
            discarded = warehouse.retried(discard, log)
        except DiscardError as error:
            raise dg.Failure(str(error), allow_retries=False) from error
    log.info("dead_letters_discarded", dataset=spec.name, per_partition=discarded.per_partition)
    with warehouse.connection() as conn:
        yield dead_letter_observation(conn, asset_key)
    yield dg.Output(
        None,
        metadata={
            "discarded": sum(discarded.per_partition.values()),
            "partitions": dg.MetadataValue.json(discarded.per_partition),
        },
    )


@dg.job(
    description=(
        "Discard dead letters that will never be loaded: audited (who, why), all or none, and"
        " counted as discarded in their partitions' accounting."
    ),
    tags={"team": "data-platform"},
    resource_defs=DEAD_LETTER_JOB_RESOURCES,
)
def discard_dead_letters_job() -> None:
    """One op: the discard (see ``discard_dead_letters``)."""
    discard_dead_letters()
