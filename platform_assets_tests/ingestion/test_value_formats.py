"""Values as real systems write them, read exactly: decimals in exponent notation or with a
decimal comma, dates and timestamps in a declared ``strptime`` format or as epoch seconds and
milliseconds. What does not parse is refused on its own, saying why; nothing is rounded or
guessed. Parsed without Dagster, then loaded for real from a file declared in YAML."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pydantic
import pytest
from psycopg import sql

from platform_assets.lib.ingestion.parsing import parse_column, why_unparseable
from platform_assets.lib.ingestion.spec import ColumnSpec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.datasets.test_spec_changes import DAY
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.test_spec_migrations import load


def parsed(column: dict, *texts: str) -> tuple[list, list[bool], list[str]]:
    """The typed values, which did not parse, and why each of those did not."""
    spec = ColumnSpec.model_validate({"name": "x", **column})
    typed, failed = parse_column(pa.array(texts, pa.string()), spec)
    reasons = [why_unparseable(spec, t) for t, bad in zip(texts, failed, strict=True) if bad]
    return typed.to_pylist(), failed.tolist(), reasons


def test_decimals_in_exponent_notation_are_read_exactly_or_refused_never_rounded() -> None:
    values, failed, reasons = parsed(
        {"type": "decimal", "precision": 10, "scale": 3},
        "1e3",
        "1.5E-2",
        "-2.5e+2",
        "12.345e0",
        "1.23456e1",
        "1e9",
    )
    assert values[:4] == [Decimal("1000"), Decimal("0.015"), Decimal("-250"), Decimal("12.345")]
    assert failed == [False, False, False, False, True, True]
    assert "'1.23456e1'" in reasons[0] and "4 fraction digits" in reasons[0]
    assert "'1e9'" in reasons[1] and "digits before the point" in reasons[1]


def test_a_decimal_comma_is_read_where_declared_and_a_point_beside_it_refused() -> None:
    values, failed, reasons = parsed(
        {"type": "decimal", "precision": 8, "scale": 2, "decimal_separator": ","},
        "3,5",
        "-0,25",
        "12",
        "1.234,50",
        "1.5",
    )
    assert values[:3] == [Decimal("3.5"), Decimal("-0.25"), Decimal("12")]
    assert failed == [False, False, False, True, True]
    assert all("',' is this column's decimal point" in reason for reason in reasons)
    # Without the declaration a comma is refused, saying how to declare it.
    _, failed, reasons = parsed({"type": "double"}, "3,5")
    assert failed == [True] and "decimal_separator: ','" in reasons[0]


def test_dates_and_timestamps_in_a_declared_format() -> None:
    values, failed, reasons = parsed(
        {"type": "date", "format": "%d/%m/%Y"}, "24/12/2026", "31/02/2026", "2026-12-24", "1/2/2026"
    )
    assert values[0] == date(2026, 12, 24) and values[3] == date(2026, 2, 1)
    assert failed == [False, True, True, False]  # 31 February is no day, whatever Arrow says
    assert "a date written as %d/%m/%Y" in reasons[0]
    values, failed, _ = parsed({"type": "date", "format": "%Y%m%d"}, "20261224", "2026122")
    assert values[0] == date(2026, 12, 24) and failed == [False, True]
    values, failed, _ = parsed(
        {"type": "timestamp", "format": "%d.%m.%Y %H:%M"}, "24.12.2026 18:30", "24.12.2026"
    )
    assert values[0] == datetime(2026, 12, 24, 18, 30) and failed == [False, True]
    values, failed, _ = parsed(
        {"type": "timestamptz", "format": "%d/%m/%Y %H:%M:%S%z"}, "24/12/2026 18:30:00+0100"
    )
    assert values == [datetime(2026, 12, 24, 17, 30, tzinfo=UTC)] and failed == [False]


def test_epoch_seconds_and_milliseconds() -> None:
    values, failed, reasons = parsed(
        {"type": "timestamptz", "format": "epoch_s"}, "1798137000", "0", "1798137000.5", "x"
    )
    assert values[:2] == [
        datetime(2026, 12, 24, 18, 30, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
    ]
    assert failed == [False, False, True, True]
    assert "whole number of seconds since 1970-01-01 UTC" in reasons[0]
    values, failed, _ = parsed({"type": "timestamptz", "format": "epoch_ms"}, "1798137000123")
    assert values == [datetime(2026, 12, 24, 18, 30, 0, 123000, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("column", "error"),
    [
        ({"type": "integer", "format": "%Y"}, "format applies to date, timestamp"),
        ({"type": "date", "format": "epoch_s"}, "epoch_s is an instant"),
        ({"type": "date", "format": "%d/%m/%Y %H:%M"}, "a date's format has no time"),
        ({"type": "timestamptz", "format": "%d/%m/%Y %H:%M"}, "needs the UTC offset"),
        ({"type": "timestamp", "format": "%d/%m/%Y %H:%M%z"}, "a timestamp has no offset"),
        ({"type": "date", "format": "dd/mm/yyyy"}, "neither a strptime pattern"),
        ({"type": "integer", "decimal_separator": ","}, "decimal_separator applies"),
    ],
)
def test_a_format_that_does_not_fit_its_column_is_refused_naming_it(
    column: dict, error: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        ColumnSpec.model_validate({"name": "x", **column})


def test_a_file_of_such_values_loads_exactly(tmp_path: Path, resources: dict) -> None:
    spec = readings_spec(
        [
            {"name": "reading_id", "type": "integer", "required": True},
            {"name": "taken_on", "type": "date", "required": True, "format": "%d/%m/%Y"},
            {"name": "sensor", "type": "text"},
            {"name": "value", "type": "decimal", "precision": 12, "scale": 3},
            {
                "name": "price",
                "type": "decimal",
                "precision": 8,
                "scale": 2,
                "decimal_separator": ",",
            },
            {"name": "seen_at", "type": "timestamptz", "format": "epoch_ms"},
        ],
        primary_key=["reading_id"],
        partition_column="taken_on",
        fail_dead_letter_ratio=1,
    )
    european = "/".join(reversed(DAY.split("-")))  # 10/11/2026
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.csv").write_text(
        "reading_id,taken_on,sensor,value,price,seen_at\n"
        f'1,{european},a,1e3,"3,50",1794268800000\n'
        f'2,{european},b,1.5E-2,"0,99",1794268800001\n'
        f"3,{european},c,1.23456e1,1,1794268800002\n"
    )
    landing = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    assert load(spec, landing).success

    warehouse = resources["warehouse"]
    assert fetch_all(
        warehouse,
        sql.SQL(
            "SELECT reading_id, taken_on, value, price, seen_at FROM io_test.readings ORDER BY 1"
        ),
    ) == [
        (
            1,
            date(2026, 11, 10),
            Decimal("1000.000"),
            Decimal("3.50"),
            datetime(2026, 11, 10, tzinfo=UTC),
        ),
        (
            2,
            date(2026, 11, 10),
            Decimal("0.015"),
            Decimal("0.99"),
            datetime(2026, 11, 10, 0, 0, 0, 1000, tzinfo=UTC),
        ),
    ]
    ((message,),) = fetch_all(
        warehouse, sql.SQL("SELECT error_message FROM platform.dead_letter_records")
    )
    assert "'1.23456e1'" in message and "4 fraction digits" in message
