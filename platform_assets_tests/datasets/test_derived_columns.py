"""Derived columns declared in YAML, computed before validation: a date from parts as the
partition column, an instant from a date and an HHMM clock in a local zone (DST refused, not
guessed), a local date and wall-clock time of an instant, a cast, a constant, a concatenation.
Materialised for real, read back from Postgres, replayed after a patch."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.lib.dead_letters.replay_store import (
    Patch,
    ReplayKey,
    record_patches,
    replay_partition,
)
from platform_assets.lib.ingestion.replay import revalidate
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.helpers import fetch_all

DAY = "2026-03-08"  # the spring DST change in Chicago: 02:00-02:59 does not exist
HEADER = "year,month,day,carrier,flight_number,dep_clock,recorded_at,distance"
COLUMNS = [
    {"name": "year", "type": "integer", "required": True},
    {"name": "month", "type": "integer", "required": True},
    {"name": "day", "type": "integer", "required": True},
    {"name": "carrier", "type": "text", "required": True, "regex": "[A-Z0-9]{2}"},
    {"name": "flight_number", "type": "integer", "required": True},
    {"name": "dep_clock", "type": "integer"},
    {"name": "recorded_at", "type": "timestamptz", "required": True},
    {"name": "distance", "type": "text"},
    {
        "name": "flight_date",
        "type": "date",
        "required": True,
        "derive": {"kind": "date_from_parts", "year": "year", "month": "month", "day": "day"},
    },
    {
        "name": "departed_at",
        "type": "timestamptz",
        "derive": {
            "kind": "timestamp_from_date_and_clock",
            "date": "flight_date_text",
            "clock": "dep_clock",
            "timezone": "America/Chicago",
        },
    },
    {
        "name": "recorded_on",
        "type": "date",
        "derive": {"kind": "local_date", "column": "recorded_at", "timezone": "America/Chicago"},
    },
    {
        "name": "recorded_local",
        "type": "timestamp",
        "derive": {
            "kind": "local_timestamp",
            "column": "recorded_at",
            "timezone": "America/Chicago",
        },
    },
    {
        "name": "flight_code",
        "type": "text",
        "required": True,
        "derive": {"kind": "concat", "columns": ["carrier", "flight_number"], "separator": "-"},
    },
    {
        "name": "distance_miles",
        "type": "decimal",
        "precision": 7,
        "scale": 1,
        "min": 0,
        "derive": {"kind": "cast", "column": "distance"},
    },
    {"name": "source_system", "type": "text", "derive": {"kind": "constant", "value": "bts"}},
]


def flights_spec(columns: list[dict]) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "name": "flights",
            "asset_key": ["io_test", "flights"],
            "description": "Flights of the day, as a public on-time export gives them",
            "group": "io_test",
            "partitions": {"start": "2026-03-01"},
            "source": {
                "kind": "landing_files",
                "directory": "flights",
                "pattern": "flights_{date}.csv",
            },
            "columns": columns,
            "dedupe_key": ["flight_code", "flight_date"],
            "partition_column": "flight_date",
            "fail_dead_letter_ratio": 1,
        }
    )


# departed_at reads a declared date column: the export's date as text, typed as a date.
SPEC = flights_spec(
    [
        *COLUMNS[:8],
        {"name": "flight_date_text", "type": "date", "required": True},
        *COLUMNS[8:],
    ]
)
HEADER += ",flight_date_text"
ROWS = [
    # year, month, day, carrier, number, clock, recorded_at, distance, date text
    "2026,3,8,AA,100,0530,2026-03-08T04:10:00Z,733.0,2026-03-08",  # good; recorded 22:10 CST 03-07
    "2026,3,8,UA,7,5,2026-03-08T12:00:00Z,,2026-03-08",  # 00:05; no distance
    "2026,13,8,DL,1,1200,2026-03-08T12:00:00Z,10,2026-03-08",  # month 13
    "2026,3,8,WN,2,2460,2026-03-08T12:00:00Z,10,2026-03-08",  # not a clock
    "2026,3,8,B6,3,230,2026-03-08T12:00:00Z,10,2026-03-08",  # 02:30 does not exist that day
    "2026,3,9,AS,4,1200,2026-03-09T12:00:00Z,10,2026-03-09",  # another day's flight
]


@pytest.fixture
def loaded(resources: dict, instance: dg.DagsterInstance, tmp_path: Path) -> dict:
    (tmp_path / "flights").mkdir()
    (tmp_path / "flights" / f"flights_{DAY}.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    result = dg.materialize(
        [build_dataset_asset(SPEC)], partition_key=DAY, resources=resources, instance=instance
    )
    assert result.success
    return resources


def messages(resources: dict) -> dict[str, str]:
    rows = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT payload->>'carrier', error_message FROM platform.dead_letter_records"
            " WHERE status = 'new'"
        ),
    )
    return dict(rows)


def test_derived_columns_are_computed_typed_checked_and_stored(loaded: dict) -> None:
    stored = fetch_all(
        loaded["warehouse"],
        sql.SQL(
            "SELECT flight_code, flight_date, departed_at, recorded_on, recorded_local,"
            " distance_miles, source_system FROM io_test.flights ORDER BY flight_code"
        ),
    )
    assert stored == [
        (
            "AA-100",
            date(2026, 3, 8),
            datetime(2026, 3, 8, 10, 30, tzinfo=UTC),  # 05:30 CDT (after the change): 10:30 UTC
            date(2026, 3, 7),  # 04:10 UTC is the evening before in Chicago
            datetime(2026, 3, 7, 22, 10),
            Decimal("733.0"),
            "bts",
        ),
        (
            "UA-7",
            date(2026, 3, 8),
            datetime(2026, 3, 8, 6, 5, tzinfo=UTC),
            date(2026, 3, 8),
            datetime(2026, 3, 8, 7, 0),
            None,
            "bts",
        ),
    ]
    assert messages(loaded) == {
        "DL": "flight_date: '2026-13-08' is not a calendar date as YYYY-MM-DD",
        "WN": "departed_at: dep_clock is not a clock time HHMM (0000 to 2359)",
        "B6": "departed_at: flight_date_text at dep_clock does not exist, or happens twice, in"
        " America/Chicago (the clocks change that day)",
        "AS": f"flight_date is not in partition {DAY}",
    }


def test_a_patched_letter_is_derived_again_on_replay(loaded: dict) -> None:
    warehouse = loaded["warehouse"]
    ((letter_id, payload),) = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT id, payload FROM platform.dead_letter_records WHERE payload->>'carrier' = 'DL'"
        ),
    )
    assert "flight_date" not in payload  # a letter keeps what the source sent, nothing derived
    table_slice = dataset_table_slice(SPEC, [DAY])
    window = table_slice.partitions[0].window
    partition = PartitionWindow(DAY, window.start, window.end)
    with warehouse.bulk_connection() as conn:
        fix = Patch(letter_id, {**payload, "month": "3"}, note="month typo", author="ana")
        record_patches(conn, "io_test/flights", [fix], "replay-run")
        outcome = replay_partition(
            conn,
            "io_test/flights",
            table_slice,
            ReplayKey(SPEC.primary_key, SPEC.dedupe_key),
            ["replaying"],
            lambda records: revalidate(SPEC, records, partition, None),
            "replay-run",
        )

    assert (outcome.resolved, outcome.still_failing) == (1, 0)
    replayed = fetch_all(
        warehouse,
        sql.SQL("SELECT flight_date, departed_at FROM io_test.flights WHERE flight_code = 'DL-1'"),
    )
    assert replayed == [(date(2026, 3, 8), datetime(2026, 3, 8, 17, 0, tzinfo=UTC))]  # 12:00 CDT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "timestamptz"}, "date_from_parts gives a date, not a timestamptz"),
        ({"derive": {"kind": "cast", "column": "nope"}}, "reads 'nope', which is not a declared"),
        (
            {"derive": {"kind": "cast", "column": "source_system"}},
            "reads 'source_system', which is not a declared source column",
        ),
        (
            {"derive": {"kind": "local_date", "column": "carrier", "timezone": "UTC"}},
            "needs 'carrier' to be timestamptz, not text",
        ),
        (
            {"derive": {"kind": "local_date", "column": "recorded_at", "timezone": "Moon/Base"}},
            "derive.timezone 'Moon/Base' is not a known time zone",
        ),
    ],
    ids=["wrong-type", "unknown-input", "derived-input", "input-type", "zone"],
)
def test_the_spec_refuses_derivations_that_cannot_work(change: dict, message: str) -> None:
    columns = [*COLUMNS[:8], {**COLUMNS[8], **change}, *COLUMNS[10:]]
    with pytest.raises(ValueError) as raised:
        flights_spec(columns)
    assert message in str(raised.value)


def test_the_partition_start_is_a_date_or_a_time() -> None:
    delivered = {"name": "delivered", "type": "text", "derive": {"kind": "partition_start"}}
    with pytest.raises(ValueError) as raised:
        flights_spec([*COLUMNS[:9], *COLUMNS[10:], delivered])
    assert "partition_start gives a date or timestamptz or timestamp, not a text" in str(
        raised.value
    )
