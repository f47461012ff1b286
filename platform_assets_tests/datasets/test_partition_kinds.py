"""Partitions declared in YAML: local days in a time zone (DST days of 23 and 25 hours), months
with their own key format, and the spec refusing what cannot work. Materialised for real."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.partitions import dataset_partitions
from platform_assets.lib.ingestion.spec import DatasetSpec, DatasetSpecError, load_spec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.helpers import fetch_all

ZONE = "America/New_York"


def events_spec(**partitions: object) -> DatasetSpec:
    """Sensor readings partitioned by their timestamp (or ``column``)."""
    column = partitions.pop("column", "taken_at")
    columns = [
        {"name": "reading_id", "type": "integer", "required": True},
        {"name": "taken_at", "type": "timestamptz", "required": True},
        {"name": "taken_on", "type": "date", "required": True},
        {"name": "value", "type": "decimal", "precision": 8, "scale": 3},
    ]
    return readings_spec(
        columns,
        {"start": "2026-01-01", **partitions},
        primary_key=["reading_id"],
        partition_column=column,
    )


def write_readings(directory: Path, key: str, instants: list[datetime]) -> None:
    """One reading per instant, ``taken_on`` its local date, in the key's file."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["reading_id,taken_at,taken_on,value"]
    for n, instant in enumerate(instants, start=1):
        local_day = instant.astimezone(ZoneInfo(ZONE)).date()
        lines.append(f"{n},{instant.isoformat()},{local_day.isoformat()},{n}.125")
    (directory / f"readings_{key}.csv").write_text("\n".join(lines) + "\n")


def materialize(spec: DatasetSpec, key: str, resources: dict, instance: dg.DagsterInstance):
    return dg.materialize(
        [build_dataset_asset(spec)],
        partition_key=key,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def figures(result: dg.ExecuteInProcessResult) -> tuple[int, int, int]:
    metadata = result.asset_materializations_for_node("io_test__readings")[0].metadata
    return tuple(metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered"))


@pytest.mark.parametrize(("day", "hours"), [("2026-03-08", 23), ("2026-11-01", 25)])
def test_a_local_day_holds_its_own_hours_on_dst_days(
    day: str, hours: int, resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    spec = events_spec(timezone=ZONE)
    window = dataset_partitions(spec).time_window_for_partition_key(day)
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    assert (end - start) == timedelta(hours=hours)
    inside = [start + timedelta(hours=h) for h in range(hours)]
    # The last second of the day before and the first of the day after belong elsewhere.
    outside = [start - timedelta(seconds=1), end]
    write_readings(tmp_path / "readings", day, inside + outside)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    result = materialize(spec, day, resources, instance)

    assert result.success
    assert figures(result) == (hours + 2, hours, 2)
    stored = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT count(*), min(taken_at), max(taken_at),"
            " count(*) FILTER (WHERE (taken_at AT TIME ZONE %s)::date = %s::date)"
            " FROM io_test.readings"
        ),
        (ZONE, day),
    )
    assert stored == [(hours, inside[0], inside[-1], hours)]
    rules = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT f->>'check', count(*) FROM platform.dead_letter_records,"
            " jsonb_array_elements(error_detail->'failures') AS f GROUP BY 1"
        ),
    )
    assert rules == [("partition", 2)]


def test_monthly_partitions_with_their_own_key_format_load_a_date_column(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    spec = events_spec(granularity="monthly", key_format="%Y-%m", column="taken_on")
    assert dataset_partitions(spec).get_partition_keys()[:2] == ["2026-01", "2026-02"]
    days = [date(2026, 2, 1), date(2026, 2, 14), date(2026, 2, 28), date(2026, 3, 1)]
    noon = [datetime(d.year, d.month, d.day, 12, tzinfo=ZoneInfo(ZONE)) for d in days]
    write_readings(tmp_path / "readings", "2026-02", noon)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    result = materialize(spec, "2026-02", resources, instance)

    assert result.success and figures(result) == (4, 3, 1)
    stored = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT min(taken_on), max(taken_on) FROM io_test.readings"),
    )
    assert stored == [(date(2026, 2, 1), date(2026, 2, 28))]


def test_weekly_partitions_run_monday_to_monday() -> None:
    weeks = dataset_partitions(events_spec(granularity="weekly"))  # from Thursday 2026-01-01
    first = weeks.time_window_for_partition_key(weeks.get_partition_keys()[0])
    assert (first.start.date(), first.end.date()) == (date(2026, 1, 5), date(2026, 1, 12))
    assert first.start.weekday() == 0  # a Monday


def test_hourly_local_partitions_key_the_repeated_autumn_hour_by_its_offset() -> None:
    """What docs/datasets.md warns of: the second 01:00 of 2026-11-01 in New York."""
    keys = dataset_partitions(events_spec(granularity="hourly", timezone=ZONE)).get_partition_keys(
        current_time=datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert [key for key in keys if key.startswith("2026-11-01-01:")] == [
        "2026-11-01-01:00",
        "2026-11-01-01:00-0500",
    ]


@pytest.mark.parametrize(
    ("partitions", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "partitions.timezone 'Mars/Olympus_Mons' is not a"),
        ({"granularity": "hourly", "column": "taken_on"}, "hourly partitions need a timestamptz"),
        ({"key_format": "%Y-%j"}, "partitions.key_format '%Y-%j' may use only"),
        ({"granularity": "fortnightly"}, "granularity"),
    ],
    ids=["unknown-zone", "hourly-date-column", "key-format", "granularity"],
)
def test_the_spec_refuses_partitions_that_cannot_work(
    partitions: dict, message: str, tmp_path: Path
) -> None:
    column = partitions.pop("column", "taken_at")
    lines = "\n".join(f"  {name}: {value!r}" for name, value in partitions.items())
    document = (
        "name: readings\nasset_key: [io_test, readings]\ndescription: d\ngroup: io_test\n"
        f"partitions:\n  start: 2026-01-01\n{lines}\n"
        "source: {kind: landing_files, directory: r, pattern: 'r_{date}.csv'}\n"
        "columns:\n  - {name: reading_id, type: integer, required: true}\n"
        "  - {name: taken_at, type: timestamptz}\n"
        "  - {name: taken_on, type: date}\n"
        f"primary_key: [reading_id]\npartition_column: {column}\n"
    )
    path = tmp_path / "readings.yaml"
    path.write_text(document)
    with pytest.raises(DatasetSpecError, match=r"readings\.yaml") as raised:
        load_spec(path)
    assert message in str(raised.value)
