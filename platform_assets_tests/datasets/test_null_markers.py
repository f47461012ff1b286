"""A CSV whose publisher writes a missing value as ``NA`` (R, statistics packages) or ``\\N``
(MySQL), declared with ``source.null_values``: each marker, quoted or not, is a missing value in
every column: loaded as null where the column is optional, a dead letter saying "is missing" where
it is required, never the text "NA" nor "'NA' is not an integer". Materialised for real."""

from pathlib import Path

import pydantic
import pytest
from psycopg import sql

from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.datasets.test_spec_changes import DAY
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.test_spec_migrations import load

LINES = [
    f"1,{DAY},a,5,ok",
    f"2,{DAY},NA,NA,NA",  # every optional field missing, unquoted
    f'3,{DAY},b,"NA","NA"',  # quoted: a marker all the same
    f"NA,{DAY},c,1,key missing",  # a required field missing
    f"5,{DAY},d,\\N,mysql",
    f"6,{DAY},e,,empty",  # the empty field is missing as always
    f"7,{DAY},f,NaN,not a marker",  # only the listed spellings are markers
]


def readings_with_markers(null_values: list[str]) -> DatasetSpec:
    spec = readings_spec(
        [
            {"name": "reading_id", "type": "integer", "required": True},
            {"name": "taken_on", "type": "date", "required": True},
            {"name": "sensor", "type": "text"},
            {"name": "value", "type": "integer"},
            {"name": "note", "type": "text"},
        ],
        primary_key=["reading_id"],
        partition_column="taken_on",
        fail_dead_letter_ratio=1,
    )
    return spec.model_copy(
        update={"source": spec.source.model_copy(update={"null_values": null_values})}
    )


@pytest.fixture
def marked(tmp_path: Path, resources: dict) -> dict:
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.csv").write_text(
        "reading_id,taken_on,sensor,value,note\n" + "\n".join(LINES) + "\n"
    )
    return {**resources, "landing": LandingZone(directory=str(tmp_path))}


def stored(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL("SELECT reading_id, sensor, value, note FROM io_test.readings ORDER BY 1"),
    )


def letters(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_ref, payload, error_message FROM platform.dead_letter_records"
            " ORDER BY id"
        ),
    )


def line_of(source_ref: str) -> int:
    return int(source_ref.rsplit(":", 1)[1])


def test_declared_markers_are_missing_values_in_every_column(marked: dict) -> None:
    assert load(readings_with_markers(["NA", "\\N"]), marked).success

    warehouse = marked["warehouse"]
    assert stored(warehouse) == [
        (1, "a", 5, "ok"),
        (2, None, None, None),
        (3, "b", None, None),
        (5, "d", None, "mysql"),
        (6, "e", None, "empty"),
    ]
    (key_missing, nan) = sorted(letters(warehouse), key=lambda letter: line_of(letter[0]))
    assert key_missing[0].endswith(":5")  # the file's line 5 (its header is line 1)
    assert key_missing[1]["reading_id"] == "NA"  # the letter keeps what the file said
    assert key_missing[2] == "reading_id is missing"
    assert nan[0].endswith(":8") and "value" in nan[2] and "NaN" in nan[2]


def test_without_markers_na_is_refused_as_a_value_not_guessed(marked: dict) -> None:
    assert load(readings_with_markers([]), marked).success

    warehouse = marked["warehouse"]
    assert [row[0] for row in stored(warehouse)] == [1, 6]  # no "NA" text stored
    refused = {line_of(letter[0]): letter[2] for letter in letters(warehouse)}
    assert set(refused) == {3, 4, 5, 6, 8}
    assert "'NA'" in refused[3] and "value" in refused[3]
    assert "is not an integer" in refused[6]  # \\N, a value like any other


def test_markers_are_refused_for_parquet_files() -> None:
    spec = readings_with_markers([])
    source = spec.source.model_dump() | {"format": "parquet", "null_values": ["NA"]}
    with pytest.raises(pydantic.ValidationError, match="null_values applies to CSV files"):
        type(spec.source).model_validate(source)
