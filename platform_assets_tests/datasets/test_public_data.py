"""Real public data exactly as its publisher ships it, declared in YAML alone: the Palmer penguins
CSV of the ``palmerpenguins`` package (installed from PyPI with the test extras), which writes a
missing value as R does, ``NA``. Every one of its records is loaded or dead-lettered for a stated
reason, and what is stored is compared value by value with pandas' own reading of the same file,
plain and gzip-compressed. Materialised for real, the dataset's checks included."""

import gzip
import importlib.resources
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.lib.ingestion.spec import load_spec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all

DAY = "2026-11-20"
PENGUINS_CSV = importlib.resources.files("palmerpenguins") / "data" / "penguins.csv"
# What a data engineer writes to load the file: nothing else is configured.
SPEC_YAML = """\
name: penguins
asset_key: [io_test, penguins]
description: Palmer Station penguins, one delivery a day of the whole census.
group: io_test
partitions: {start: 2026-11-01}
source:
  kind: landing_files
  directory: penguins
  pattern: "penguins_{date}.%(suffix)s"
  null_values: ["NA"]
columns:
  - {name: species, type: text, required: true, enum: [Adelie, Chinstrap, Gentoo]}
  - {name: island, type: text, required: true, enum: [Biscoe, Dream, Torgersen]}
  - {name: bill_length_mm, type: decimal, precision: 4, scale: 1, min: 0}
  - {name: bill_depth_mm, type: decimal, precision: 4, scale: 1, min: 0}
  - {name: flipper_length_mm, type: integer, min: 0}
  - {name: body_mass_g, type: integer, min: 0}
  - {name: sex, type: text, required: true, enum: [female, male]}
  - {name: year, type: integer, required: true, min: 2007}
  - {name: delivered_on, type: date, required: true, derive: {kind: partition_start}}
partition_column: delivered_on
max_dead_letter_ratio: 0.05
"""
MEASURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
COLUMNS = ["species", "island", *MEASURES, "sex", "year"]


def pandas_rows(frame: pd.DataFrame) -> list[tuple]:
    """The frame's rows as the table should hold them: decimals exact (read from the file's own
    text, pandas' strings), integers as integers, missing values as None."""
    typed = {
        "bill_length_mm": Decimal,
        "bill_depth_mm": Decimal,
        "flipper_length_mm": int,
        "body_mass_g": int,
        "year": int,
    }
    return sorted(
        tuple(None if pd.isna(row[name]) else typed.get(name, str)(row[name]) for name in COLUMNS)
        for _, row in frame.iterrows()
    )


def load_as_published(
    tmp_path: Path, resources: dict, file_name: str, body: bytes, spec_yaml: str
) -> dg.ExecuteInProcessResult:
    """``body`` landed as ``penguins/<file_name>``, the dataset declared by ``spec_yaml`` alone,
    and the day materialised with the dataset's checks: the run and every check succeed."""
    (tmp_path / "penguins").mkdir()
    (tmp_path / "penguins" / file_name).write_bytes(body)
    spec_file = tmp_path / "dataset.yaml"
    spec_file.write_text(spec_yaml)
    spec = load_spec(spec_file)
    result = dg.materialize(
        [build_dataset_asset(spec), *build_dataset_checks(spec)],
        partition_key=DAY,
        resources={**resources, "landing": LandingZone(directory=str(tmp_path))},
        raise_on_error=False,
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    return result


def assert_letters_are_the_rows_without_sex(
    warehouse: Warehouse, file_name: str, no_sex: pd.DataFrame
) -> None:
    """The dead letters are exactly pandas' rows without a sex, each at its line of the file,
    each saying so."""
    letters = fetch_all(
        warehouse,
        sql.SQL("SELECT source_ref, error_message FROM platform.dead_letter_records ORDER BY id"),
    )
    # pandas numbers data rows from 0; the file's line is that + 2 (its header is line 1)
    assert sorted(ref for ref, _ in letters) == sorted(
        f"{file_name}:{index + 2}" for index in no_sex.index
    )
    assert {message for _, message in letters} == {"sex is missing"}


@pytest.mark.parametrize("suffix", ["csv", "csv.gz"])
def test_the_penguins_csv_loads_exactly_as_pandas_reads_it(
    tmp_path: Path, resources: dict, suffix: str
) -> None:
    shipped = PENGUINS_CSV.read_bytes()
    body = gzip.compress(shipped) if suffix.endswith(".gz") else shipped
    landed = f"penguins_{DAY}.{suffix}"
    result = load_as_published(tmp_path, resources, landed, body, SPEC_YAML % {"suffix": suffix})

    with PENGUINS_CSV.open("rb") as file:  # pandas reads "NA" as missing by default
        as_text = pd.read_csv(file, dtype=str)
    complete, no_sex = as_text[as_text.sex.notna()], as_text[as_text.sex.isna()]
    assert len(complete) + len(no_sex) == len(as_text) == 344  # the file as published

    warehouse = resources["warehouse"]
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS)
    stored = fetch_all(warehouse, sql.SQL("SELECT {} FROM io_test.penguins").format(columns))
    assert sorted(stored, key=repr) == sorted(pandas_rows(complete), key=repr)
    delivered = fetch_all(warehouse, sql.SQL("SELECT DISTINCT delivered_on FROM io_test.penguins"))
    assert delivered == [(date.fromisoformat(DAY),)]  # the delivery's day: the partition
    for measure in MEASURES:  # the NA markers of optional columns are nulls, not text nor letters
        ((nulls,),) = fetch_all(
            warehouse,
            sql.SQL("SELECT count(*) FROM io_test.penguins WHERE {} IS NULL").format(
                sql.Identifier(measure)
            ),
        )
        assert nulls == complete[measure].isna().sum()

    assert_letters_are_the_rows_without_sex(warehouse, landed, no_sex)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_read"].value == len(as_text)
    assert metadata["rows_loaded"].value == len(complete)


RAW_CSV = importlib.resources.files("palmerpenguins") / "data" / "penguins-raw.csv"
# The raw export as the Palmer Station LTER publishes it: headers that are no column names, a
# quoted field with a comma, Yes/No, R's float noise in the isotope ratios, NA in every column.
RAW_SPEC_YAML = """\
name: penguins_raw
asset_key: [io_test, penguins_raw]
description: The Palmer Station penguin census as its raw export.
group: io_test
partitions: {start: 2026-11-01}
source:
  kind: landing_files
  directory: penguins
  pattern: "penguins-raw_{date}.csv"
  null_values: ["NA"]
  extra_columns: ignore
columns:
  - {name: study_name, header: studyName, type: text, required: true}
  - {name: sample_number, header: Sample Number, type: integer, required: true}
  - {name: species, header: Species, type: text, required: true}
  - {name: island, header: Island, type: text, required: true}
  - {name: individual_id, header: Individual ID, type: text, required: true}
  - {name: clutch_completion, header: Clutch Completion, type: boolean, required: true}
  - {name: egg_date, header: Date Egg, type: date, required: true}
  - {name: culmen_length_mm, header: Culmen Length (mm), type: decimal, precision: 4, scale: 1}
  - {name: culmen_depth_mm, header: Culmen Depth (mm), type: decimal, precision: 4, scale: 1}
  - {name: flipper_length_mm, header: Flipper Length (mm), type: integer}
  - {name: body_mass_g, header: Body Mass (g), type: integer}
  - {name: sex, header: Sex, type: text, required: true, enum: [FEMALE, MALE]}
  - {name: delta_15_n, header: Delta 15 N (o/oo), type: double}
  - {name: delta_13_c, header: Delta 13 C (o/oo), type: double}
  - {name: comments, header: Comments, type: text}
  - {name: delivered_on, type: date, required: true, derive: {kind: partition_start}}
dedupe_key: [study_name, individual_id]
partition_column: delivered_on
max_dead_letter_ratio: 0.05
"""
RAW_COLUMNS = {  # column: (header, how pandas' text becomes the stored value)
    "study_name": ("studyName", str),
    "sample_number": ("Sample Number", int),
    "island": ("Island", str),
    "clutch_completion": ("Clutch Completion", lambda text: text == "Yes"),
    "egg_date": ("Date Egg", date.fromisoformat),
    "culmen_length_mm": ("Culmen Length (mm)", Decimal),
    "body_mass_g": ("Body Mass (g)", int),
    "sex": ("Sex", str),
    "delta_15_n": ("Delta 15 N (o/oo)", float),
    "comments": ("Comments", str),
}


def test_the_raw_export_loads_by_its_own_headers(tmp_path: Path, resources: dict) -> None:
    landed = f"penguins-raw_{DAY}.csv"
    load_as_published(tmp_path, resources, landed, RAW_CSV.read_bytes(), RAW_SPEC_YAML)

    with RAW_CSV.open("rb") as file:
        as_text = pd.read_csv(file, dtype=str)
    complete, no_sex = as_text[as_text.Sex.notna()], as_text[as_text.Sex.isna()]
    expected = sorted(
        (
            tuple(
                None if pd.isna(row[header]) else typed(row[header])
                for header, typed in RAW_COLUMNS.values()
            )
            for _, row in complete.iterrows()
        ),
        key=repr,
    )
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in RAW_COLUMNS)
    query = sql.SQL("SELECT {} FROM io_test.penguins_raw").format(columns)
    assert sorted(fetch_all(resources["warehouse"], query), key=repr) == expected
    assert_letters_are_the_rows_without_sex(resources["warehouse"], landed, no_sex)
