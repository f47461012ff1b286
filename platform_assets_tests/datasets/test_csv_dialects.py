"""CSV files as real systems export them, declared in the spec: a European spreadsheet's export
(``;`` between fields, Windows-1252 text, a decimal comma, no header) and a Latin-1 file quoted with
``'``. Every line is loaded or dead-lettered, text decoded as declared, and a byte the encoding
leaves undefined makes only its own record a dead letter. Materialised for real."""

import re
from pathlib import Path

import pydantic
import pytest
from psycopg import sql

from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.datasets.test_compressed_files import load
from platform_assets_tests.datasets.test_spec_changes import DAY
from platform_assets_tests.helpers import fetch_all

COLUMNS = [
    {"name": "reading_id", "type": "integer", "required": True},
    {"name": "taken_on", "type": "date", "required": True, "format": "%d.%m.%Y"},
    {"name": "place", "type": "text"},
    {"name": "value", "type": "decimal", "precision": 8, "scale": 2, "decimal_separator": ","},
]
GERMAN_DAY = ".".join(reversed(DAY.split("-")))  # 10.11.2026


def spec_with(**source: object) -> DatasetSpec:
    spec = readings_spec(
        COLUMNS, primary_key=["reading_id"], partition_column="taken_on", fail_dead_letter_ratio=1
    )
    declared = type(spec.source).model_validate({**spec.source.model_dump(), **source})
    return spec.model_copy(update={"source": declared})


def stored(resources: dict) -> list[tuple]:
    return fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT reading_id, place, value::text FROM io_test.readings ORDER BY 1"),
    )


def letters(resources: dict) -> list[tuple]:
    return fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT source_ref, error_message FROM platform.dead_letter_records ORDER BY id"),
    )


def test_a_spreadsheet_export_semicolons_windows_1252_no_header(
    tmp_path: Path, resources: dict
) -> None:
    lines = [
        f"1;{GERMAN_DAY};Köln;3,50".encode("cp1252"),
        f'2;{GERMAN_DAY};"Straße; Ecke";-0,25'.encode("cp1252"),  # a quoted delimiter
        f"3;{GERMAN_DAY};Caf".encode() + b"\x81;1,00",  # 0x81: undefined in Windows-1252
        f"4;{GERMAN_DAY};€ zone;7".encode("cp1252"),
    ]
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.csv").write_bytes(b"\r\n".join(lines) + b"\r\n")

    result = load(spec_with(delimiter=";", encoding="cp1252", header=False), tmp_path, resources)

    assert result.success
    assert stored(resources) == [
        (1, "Köln", "3.50"),
        (2, "Straße; Ecke", "-0.25"),
        (4, "€ zone", "7.00"),
    ]
    ((source_ref, message),) = letters(resources)
    assert source_ref == f"readings_{DAY}.csv:3"  # no header: the first line is line 1
    assert "are not valid cp1252" in message
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_read"].value == 4


def test_a_latin_1_file_quoted_with_apostrophes(tmp_path: Path, resources: dict) -> None:
    text = (
        "reading_id|taken_on|place|value\n"
        f"1|{GERMAN_DAY}|'Zürich|Nord'|2,5\n"
        f"2|{GERMAN_DAY}|'l''Aquila'|1\n"
    )
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.csv").write_bytes(text.encode("latin-1"))

    result = load(spec_with(delimiter="|", quote="'", encoding="latin-1"), tmp_path, resources)

    assert result.success
    assert stored(resources) == [(1, "Zürich|Nord", "2.50"), (2, "l'Aquila", "1.00")]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ({"delimiter": ";", "quote": ";"}, "must differ"),
        ({"delimiter": "\n"}, "neither may be a line break"),
        ({"delimiter": ";;"}, "at most 1 character"),
        ({"encoding": "utf-16"}, "Input should be"),
    ],
)
def test_a_dialect_that_cannot_be_read_is_refused(source: dict, error: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        spec_with(**source)


@pytest.mark.parametrize(
    ("columns", "source", "message"),
    [
        (
            [{"name": "value", "type": "integer", "header": "Value (kWh)"}],
            {"format": "parquet"},
            "header applies to CSV files with a header line",
        ),
        (
            [{"name": "value", "type": "integer", "header": "Value (kWh)"}],
            {"header": False},
            "header applies to CSV files with a header line",
        ),
        (
            [{"name": "value", "type": "integer", "header": "reading_id"}],
            {},
            "headers read by two columns: ['reading_id']",
        ),
    ],
    ids=["parquet", "no-header-line", "repeated"],
)
def test_a_column_header_is_refused_where_it_cannot_name_a_csv_column(
    columns: list[dict], source: dict, message: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        spec = readings_spec(
            [
                {"name": "reading_id", "type": "integer", "required": True},
                {"name": "taken_on", "type": "date", "required": True},
                *columns,
            ],
            partition_column="taken_on",
        )
        document = spec.model_dump(mode="json")
        document["source"] |= source
        DatasetSpec.model_validate(document)
