"""The Postgres IO manager through real materialisations: types, partitions, schema, concurrency."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import (
    fetch_all,
    row_count,
    table_checksum,
    wait_for_lock_waiters,
)

DAY = "2026-11-01"
NEXT_DAY = "2026-11-02"
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")


def partitioned_asset(
    frame_for_day: Callable[[date], pd.DataFrame],
    name: str = "events",
    column: str = "event_date",
    **metadata: object,
) -> dg.AssetsDefinition:
    """A daily asset under ``io_test`` whose value is ``frame_for_day(partition_date)``."""

    @dg.asset(
        key=["io_test", name],
        partitions_def=daily,
        metadata={"partition_column": column, **metadata},
    )
    def _asset(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return frame_for_day(context.partition_time_window.start.date())

    return _asset


def events(day: date, rows: int = 3, **extra: object) -> pd.DataFrame:
    """A small frame of every supported type, with a null in each column of the last row."""
    frame = pd.DataFrame(
        {
            "event_id": pd.array([*range(1, rows), None], dtype="Int64"),
            "event_date": [day] * rows,
            "seen_at": pd.Series(
                [datetime(2026, 11, 1, 12, i % 60, tzinfo=UTC) for i in range(rows - 1)] + [None],
                dtype="datetime64[us, UTC]",
            ),
            "label": pd.Series([*(f"é{i} ✓" for i in range(rows - 1)), None], dtype="str"),
            "price": pd.Series(
                [*(Decimal(f"{i}.10") for i in range(rows - 1)), None], dtype=object
            ),
            "ratio": [*(i / 4 for i in range(rows - 1)), None],
            "flag": pd.array([*([True] * (rows - 1)), None], dtype="boolean"),
        }
    )
    for name, value in extra.items():
        frame[name] = value
    return frame


def run(assets: list, resources: dict, partition: str = DAY, **kwargs) -> dg.ExecuteInProcessResult:
    """Materialise ``assets`` for one partition."""
    return dg.materialize(assets, partition_key=partition, resources=resources, **kwargs)


@pytest.fixture
def io_resources(clean_warehouse: Warehouse) -> dict:
    return {"io_manager": PostgresIOManager(warehouse=clean_warehouse)}


def test_types_round_trip_through_load_input(io_resources: dict) -> None:
    upstream = partitioned_asset(events)
    captured: dict[str, pd.DataFrame] = {}

    @dg.asset(
        key=["io_test", "copy"],
        partitions_def=daily,
        ins={"frame": dg.AssetIn(key=upstream.key)},
        metadata={"partition_column": "event_date"},
    )
    def copy(frame: pd.DataFrame) -> pd.DataFrame:
        captured["frame"] = frame
        return frame

    assert run([upstream, copy], io_resources).success
    read = captured["frame"].sort_values("event_id", na_position="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(read, events(date(2026, 11, 1)))
    types = dict(
        fetch_all(
            io_resources["io_manager"].warehouse,
            sql.SQL(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'io_test' AND table_name = 'events'"
            ),
        )
    )
    assert types == {
        "event_id": "bigint",
        "event_date": "date",
        "seen_at": "timestamp with time zone",
        "label": "text",
        "price": "numeric",
        "ratio": "double precision",
        "flag": "boolean",
        "_row_hash": "bytea",
    }


def test_rows_outside_the_partition_are_refused(io_resources: dict) -> None:
    warehouse = io_resources["io_manager"].warehouse
    assert run([partitioned_asset(events)], io_resources).success
    before = table_checksum(warehouse, "io_test", "events")

    stray = partitioned_asset(lambda d: events(d).assign(event_date=[d, d, date(2026, 11, 2)]))
    result = run([stray], io_resources, raise_on_error=False)

    assert not result.success
    cause = result.failure_data_for_node("io_test__events").error.cause
    assert cause.cls_name == "RowsOutsidePartitionError" and "1 of 3 rows" in cause.message
    assert table_checksum(warehouse, "io_test", "events") == before


def test_empty_frame_empties_only_its_partition(io_resources: dict) -> None:
    warehouse = io_resources["io_manager"].warehouse
    assert run([partitioned_asset(events)], io_resources, DAY).success
    assert run([partitioned_asset(events)], io_resources, NEXT_DAY).success

    result = run([partitioned_asset(lambda d: events(d).iloc[0:0])], io_resources, DAY)

    metadata = result.asset_materializations_for_node("io_test__events")[0].metadata
    assert (
        metadata["dagster/partition_row_count"].value == 0 and metadata["rows_deleted"].value == 3
    )
    assert metadata["dagster/row_count"].value == 0  # the partition's own, as stored
    remaining = fetch_all(warehouse, sql.SQL("SELECT DISTINCT event_date FROM io_test.events"))
    assert remaining == [(date(2026, 11, 2),)]


def test_new_column_is_added_and_incompatible_changes_are_refused(io_resources: dict) -> None:
    warehouse = io_resources["io_manager"].warehouse
    assert run([partitioned_asset(events)], io_resources, DAY).success
    assert run([partitioned_asset(lambda d: events(d, note="x"))], io_resources, NEXT_DAY).success
    notes = fetch_all(
        warehouse,
        sql.SQL("SELECT event_date, count(note) FROM io_test.events GROUP BY 1 ORDER BY 1"),
    )
    assert notes == [(date(2026, 11, 1), 0), (date(2026, 11, 2), 3)]

    retyped = partitioned_asset(lambda d: events(d, note=1.5))
    result = run([retyped], io_resources, NEXT_DAY, raise_on_error=False)
    cause = result.failure_data_for_node("io_test__events").error.cause
    assert "'note'" in cause.message and "needs a migration" in cause.message

    dropped = partitioned_asset(lambda d: events(d).drop(columns=["ratio"]))
    result = run([dropped], io_resources, NEXT_DAY, raise_on_error=False)
    cause = result.failure_data_for_node("io_test__events").error.cause
    assert "ratio" in cause.message and "needs a migration" in cause.message


def test_hostile_identifiers_are_quoted(io_resources: dict) -> None:
    warehouse = io_resources["io_manager"].warehouse
    name = 'we"ird; DROP TABLE x; --'
    hostile = partitioned_asset(
        lambda d: pd.DataFrame({"select": [1], 'a "quoted" col': ["v"], "day here": [d]}),
        column="day here",
        primary_key=["select"],
        table=name,
    )
    assert run([hostile], io_resources).success
    assert run([hostile], io_resources).success
    assert row_count(warehouse, "io_test", name) == 1


def test_writer_waits_for_the_partition_lock(io_resources: dict) -> None:
    """A second writer of a partition blocks on its advisory lock instead of interleaving."""
    warehouse = io_resources["io_manager"].warehouse
    assert run([partitioned_asset(events)], io_resources).success
    (lock_key,) = TableSlice(
        "io_test", "events", ("event_date",), (PartitionSlice(DAY),)
    ).lock_keys()
    writer = partitioned_asset(lambda d: events(d, rows=5))
    outcome: list[bool] = []

    with psycopg.connect(warehouse.conninfo()) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
        thread = threading.Thread(
            target=lambda: outcome.append(run([writer], io_resources).success)
        )
        thread.start()
        waiting = wait_for_lock_waiters(warehouse, "advisory")
        assert waiting and thread.is_alive() and outcome == []
        assert row_count(warehouse, "io_test", "events") == 3
        holder.rollback()  # releases the lock
        thread.join(timeout=60)

    assert outcome == [True]
    assert row_count(warehouse, "io_test", "events") == 5


def test_lock_timeout_ends_a_blocked_write_cleanly(clean_warehouse: Warehouse) -> None:
    """With lock_timeout set, a writer blocked by another one fails fast and writes nothing."""
    impatient = {
        "io_manager": PostgresIOManager(
            warehouse=clean_warehouse, lock_timeout_ms=300, transient_attempts=1
        )
    }
    assert run([partitioned_asset(events)], impatient).success
    (lock_key,) = TableSlice(
        "io_test", "events", ("event_date",), (PartitionSlice(DAY),)
    ).lock_keys()
    with psycopg.connect(clean_warehouse.conninfo()) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
        started = time.monotonic()
        result = run(
            [partitioned_asset(lambda d: events(d, rows=5))], impatient, raise_on_error=False
        )
        waited = time.monotonic() - started
    cause = result.failure_data_for_node("io_test__events").error.cause
    assert cause.cls_name == "PartitionWriteError" and "lock timeout" in cause.message
    assert waited < 30
    assert row_count(clean_warehouse, "io_test", "events") == 3


def test_transient_errors_are_retried_and_others_are_not(
    clean_warehouse: Warehouse, instance: dg.DagsterInstance
) -> None:
    """A lock timeout is retried until the blocker goes; a bad row fails on the first attempt."""
    patient = {
        "io_manager": PostgresIOManager(
            warehouse=clean_warehouse, lock_timeout_ms=200, transient_attempts=30
        )
    }
    assert run([partitioned_asset(events)], patient, instance=instance).success
    (lock_key,) = TableSlice(
        "io_test", "events", ("event_date",), (PartitionSlice(DAY),)
    ).lock_keys()
    holder = psycopg.connect(clean_warehouse.conninfo())
    holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    try:
        retried = run([partitioned_asset(lambda d: events(d, rows=5))], patient, instance=instance)
    finally:
        release.join()
        holder.close()
    assert retried.success and row_count(clean_warehouse, "io_test", "events") == 5
    assert retry_lines(instance, retried.run_id)

    bad = partitioned_asset(lambda d: events(d).assign(event_date=[d, d, None]))
    refused = run([bad], patient, instance=instance, raise_on_error=False)
    assert not refused.success
    assert retry_lines(instance, refused.run_id) == []


def retry_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The run's log lines announcing a retry of a transient error."""
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if "transient_error_retrying" in entry.user_message
    ]


def test_a_column_null_in_every_row_is_written_and_hashed(io_resources: dict) -> None:
    """A small partition whose optional text column is empty throughout (the row hash once
    crashed on it)."""
    warehouse = io_resources["io_manager"].warehouse

    def no_labels(day: date) -> pd.DataFrame:
        return events(day).assign(label=pd.Series([None, None, None], dtype="str"))

    assert run([partitioned_asset(no_labels)], io_resources, DAY).success
    assert run([partitioned_asset(no_labels)], io_resources, DAY).success  # and again, idempotent

    stored = fetch_all(
        warehouse, sql.SQL("SELECT count(*), count(label), count(_row_hash) FROM io_test.events")
    )
    assert stored == [(3, 0, 3)]
