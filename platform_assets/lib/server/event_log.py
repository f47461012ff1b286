"""The event log of the platform's instance: dagster-postgres's, with two costs of a range run cut.

- **A new run's planned events in one ``INSERT``.** When a run is created (from the UI, a backfill,
  a sensor), Dagster records one ``ASSET_MATERIALIZATION_PLANNED`` event per asset and partition of
  the run and one ``ASSET_CHECK_EVALUATION_PLANNED`` per check, and hands them over as one batch
  when ``DAGSTER_EVENT_BATCH_SIZE`` is set. dagster-postgres inserts a batch at once only for
  materialisations and observations, and stores any other batch one event at a time: for a 120-day
  range of two assets, 240 inserts (each with its ``NOTIFY`` and its asset-table upsert, in
  separate transactions) made up half of the launch's time in the webserver. Here they are one
  ``INSERT`` of every event, then the rows Dagster's own ``store_event`` would write besides: the
  asset table's upsert (its latest run) for the last event of each asset, and each check's planned
  executions. Dagster's other option, one planned event per asset for the whole range
  (``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``), would stop the UI from marking a failed
  run's partitions as failed, so it is not used.
- **No catalog query per event.** Before storing each check result (and each materialisation's
  tags, each pool claim) Dagster asks whether its table exists; dagster-postgres asks the catalog
  every time, a fourth statement for each of the 601 check results of a 120-day range. A table
  once seen is remembered, as dagster-postgres already remembers its secondary indexes.
"""

from collections.abc import Sequence
from typing import Any

from dagster import AssetKey, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster_postgres.event_log import PostgresEventLogStorage

PLANNED_EVENTS = {
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
}


class PlatformEventLog(PostgresEventLogStorage):
    """dagster-postgres's event log, storing a batch of planned events with one ``INSERT`` and
    remembering which of its tables exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tables_seen: set[str] = set()  # before dagster-postgres's own setup asks
        super().__init__(*args, **kwargs)

    def has_table(self, table_name: str) -> bool:
        """Whether the table exists, asked of the catalog until it does (tables are not dropped
        under a running instance): Dagster asks before storing every check result."""
        if table_name not in self._tables_seen and super().has_table(table_name):
            self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch of planned events in one ``INSERT`` (then the asset and check rows that
        ``store_event`` writes for them); any other batch as dagster-postgres stores it."""
        if not events or any(event.dagster_event_type not in PLANNED_EVENTS for event in events):
            super().store_event_batch(events)
            return
        with self._connect() as conn:
            inserted = conn.execute(
                self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
            )
            event_ids = [int(row[0]) for row in inserted.fetchall()]
        last_of_asset: dict[AssetKey, tuple[EventLogEntry, int]] = {}
        for event, event_id in zip(events, event_ids, strict=True):
            if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                self.store_asset_check_event(event, event_id)
            else:
                last_of_asset[event.get_dagster_event().asset_key] = (event, event_id)
        with self.index_transaction() as conn:
            for event, event_id in last_of_asset.values():
                self._store_asset_event(conn, event, event_id)
