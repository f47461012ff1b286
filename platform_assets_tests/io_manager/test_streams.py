"""Streams of chunks through the IO manager: one transaction, re-read on a transient error."""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import psycopg
import pyarrow as pa
from psycopg import sql

from platform_assets.lib.ingestion.result import (
    DeadLetter,
    IngestedChunk,
    IngestedStream,
    dead_letter_table,
    no_dead_letters,
)
from platform_assets_tests.helpers import fetch_all

DAY = date(2026, 11, 1)
KEY = DAY.isoformat()
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")


def chunk(values: list[int], letters: int = 0) -> IngestedChunk:
    dead = dead_letter_table(
        [DeadLetter(KEY, "validate", f"f:{i}", {"n": "x"}, "Bad", "bad") for i in range(letters)]
    )
    rows = pa.table({"day": pa.array([DAY] * len(values)), "n": pa.array(values, pa.int64())})
    return IngestedChunk(rows, dead if letters else no_dead_letters(), {KEY: len(values) + letters})


def test_chunks_and_their_dead_letters_commit_together(resources, instance) -> None:
    @dg.asset(
        key=["io_test", "streamed"], partitions_def=daily, metadata={"partition_column": "day"}
    )
    def streamed() -> IngestedStream:
        """Three chunks, two of them with dead letters."""
        return IngestedStream(lambda: iter([chunk([1, 2], 1), chunk([]), chunk([3], 2)]))

    result = dg.materialize([streamed], partition_key=KEY, resources=resources, instance=instance)

    metadata = result.asset_materializations_for_node("io_test__streamed")[0].metadata
    assert [metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered")] == [
        6,
        3,
        3,
    ]
    warehouse = resources["warehouse"]
    assert fetch_all(warehouse, sql.SQL("SELECT n FROM io_test.streamed ORDER BY n")) == [
        (1,),
        (2,),
        (3,),
    ]
    letters = fetch_all(warehouse, sql.SQL("SELECT count(*) FROM platform.dead_letter_records"))
    assert letters == [(3,)]


def test_a_transient_error_mid_stream_rereads_the_source(resources, instance) -> None:
    attempts: list[int] = []

    @dg.asset(key=["io_test", "flaky"], partitions_def=daily, metadata={"partition_column": "day"})
    def flaky() -> IngestedStream:
        """Its first read breaks after one chunk with a serialization failure."""

        def read_chunks() -> Iterator[IngestedChunk]:
            attempts.append(1)
            first_attempt = len(attempts) == 1

            def chunks() -> Iterator[IngestedChunk]:
                yield chunk([1, 2, 3])
                if first_attempt:
                    raise psycopg.errors.SerializationFailure("planted between chunks")
                yield chunk([4, 5], 1)

            return chunks()

        return IngestedStream(read_chunks)

    result = dg.materialize([flaky], partition_key=KEY, resources=resources, instance=instance)

    assert result.success and len(attempts) == 2
    rows = fetch_all(resources["warehouse"], sql.SQL("SELECT count(*) FROM io_test.flaky"))
    assert rows == [(5,)]  # the first attempt's three rows were rolled back, not doubled
    accounting = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered FROM platform.ingestion_accounting"
        ),
    )
    assert accounting == [(6, 5, 1)]


def test_a_permanent_error_is_not_retried(resources, instance) -> None:
    attempts: list[int] = []

    @dg.asset(
        key=["io_test", "broken"],
        partitions_def=daily,
        metadata={"partition_column": "day"},
        retry_policy=dg.RetryPolicy(max_retries=3),
    )
    def broken() -> IngestedStream:
        """Its second chunk has a row of another day."""

        def read_chunks() -> Iterator[IngestedChunk]:
            attempts.append(1)
            outside = IngestedChunk(
                pa.table({"day": [date(2026, 11, 2)], "n": pa.array([9], pa.int64())}),
                no_dead_letters(),
                {KEY: 1},
            )
            return iter([chunk([1]), outside])

        return IngestedStream(read_chunks)

    result = dg.materialize(
        [broken], partition_key=KEY, resources=resources, instance=instance, raise_on_error=False
    )

    assert not result.success and len(attempts) == 1
    error = result.failure_data_for_node("io_test__broken").error
    assert error.cls_name == "Failure" and error.cause.cls_name == "RowsOutsidePartitionError"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
