"""One bad row must never fail a partition: a derived value too large for its column, and a key
already loaded by another partition, each cost only their own row, as a dead letter saying why."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.sales.test_every_line_accounted import (
    materialize,
    rows_add_up,
    set_field,
)

DAY = date(2026, 11, 15)


def letters(resources: dict) -> list[tuple]:
    return fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT partition_key, source_ref, stage, error_class, error_message"
            " FROM platform.dead_letter_records ORDER BY id"
        ),
    )


def test_a_derived_value_too_large_for_its_column_is_a_transform_dead_letter(
    tmp_path: Path, resources: dict, instance: dg.DagsterInstance
) -> None:
    path = write_day(tmp_path / "orders", DAY, orders=50, seed=4, malformed_share=0.0)
    lines = path.read_bytes().count(b"\n") - 1
    set_field(path, 6, 7, b"10000")  # quantity: within its rules
    set_field(path, 6, 8, b"9999999999.99")  # unit_price: within numeric(12,2)
    set_field(path, 6, 9, b"0.00")  # so amount = 99,999,999,999,900.00 > numeric(14,2)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    result = materialize(resources, instance, DAY)

    assert result.success and rows_add_up(result).passed
    ((partition, ref, stage, error_class, message),) = letters(resources)
    assert (partition, ref, stage, error_class) == (
        DAY.isoformat(),
        f"{path.name}:6",
        "transform",
        "TransformError",
    )
    assert "the transform could not compute this row" in message and "precision" in message
    loaded = fetch_all(resources["warehouse"], sql.SQL("SELECT count(*) FROM sales.orders"))
    assert loaded == [(lines - 1,)]


def test_a_key_another_partition_holds_is_a_load_dead_letter_naming_it(
    tmp_path: Path, resources: dict, instance: dg.DagsterInstance
) -> None:
    next_day = DAY + timedelta(days=1)
    first = write_day(tmp_path / "orders", DAY, orders=30, seed=4, malformed_share=0.0)
    second = write_day(tmp_path / "orders", next_day, orders=30, seed=4, malformed_share=0.0)
    redelivered = first.read_bytes().split(b"\n")[3].split(b",")[0]
    set_field(second, 4, 0, redelivered)  # yesterday's order again in today's file
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    assert materialize(resources, instance, DAY).success

    result = materialize(resources, instance, next_day)

    assert result.success and rows_add_up(result).passed
    ((partition, ref, stage, error_class, message),) = letters(resources)
    assert (partition, ref, stage, error_class) == (
        next_day.isoformat(),
        f"{second.name}:4",
        "load",
        "KeyLoadedElsewhere",
    )
    assert message == f"primary key ['order_id'] is already loaded in partition {DAY.isoformat()}"
    held = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT order_date FROM sales.orders WHERE order_id = %s"),
        (int(redelivered),),
    )
    assert held == [(DAY,)]  # the first delivery stays where it was
