"""Parsing and validating rows against a spec, without Dagster or a database."""

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_assets.lib.ingestion.key_tracker import KeyTracker
from platform_assets.lib.ingestion.pipeline import ingest_partition, landing_files
from platform_assets.lib.ingestion.spec import ColumnSpec, DatasetSpec, DatasetSpecError, load_spec
from platform_assets.lib.ingestion.validation import PartitionWindow, check_rows, failures_of
from platform_assets.lib.sources.landing_readers import LandingFileError, RawBatch

SPEC = DatasetSpec.model_validate(
    {
        "name": "things",
        "asset_key": ["test", "things"],
        "description": "Things for tests.",
        "group": "test",
        "partitions": {"start": "2026-01-01"},
        "source": {"kind": "landing_files", "directory": "things", "pattern": "t_{date}.csv"},
        "columns": [
            {"name": "id", "type": "integer", "required": True, "min": 1},
            {"name": "day", "type": "date", "required": True},
            {"name": "at", "type": "timestamptz"},
            {"name": "kind", "type": "text", "enum": ["a", "b"]},
            {"name": "code", "type": "text", "regex": "[A-Z]{2}\\d", "max_length": 3},
            {"name": "price", "type": "decimal", "precision": 6, "scale": 2, "max": 1000},
            {"name": "ratio", "type": "double", "min": 0, "max": 1},
            {"name": "flag", "type": "boolean"},
        ],
        "primary_key": ["id"],
        "partition_column": "day",
    }
)
WINDOW = PartitionWindow(
    "2026-11-01", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
)
GOOD = {
    "id": "1",
    "day": "2026-11-01",
    "at": "2026-11-01T10:00:00+02:00",
    "kind": "a",
    "code": "AB1",
    "price": "12.50",
    "ratio": "0.5",
    "flag": "true",
}


def raw(*rows: dict[str, str]) -> pa.Table:
    return pa.table({name: [row[name] for row in rows] for name in SPEC.column_names})


def rules_broken(row: dict[str, str]) -> set[tuple[str, str]]:
    checked = check_rows(raw(row), SPEC, WINDOW)
    return {(rule.column, rule.check) for rule in checked.broken if rule.rows[0]}


def test_a_good_row_is_typed_exactly() -> None:
    checked = check_rows(raw(GOOD), SPEC, WINDOW)
    assert checked.broken == []
    assert checked.typed.to_pylist() == [
        {
            "id": 1,
            "day": date(2026, 11, 1),
            "at": datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
            "kind": "a",
            "code": "AB1",
            "price": Decimal("12.50"),
            "ratio": 0.5,
            "flag": True,
        }
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("id", "", {("id", "required")}),
        ("id", "two", {("id", "type")}),
        ("id", "1.5", {("id", "type")}),
        ("id", "0", {("id", "min")}),
        ("id", "99999999999999999999", {("id", "type")}),
        ("day", "2026-02-30", {("day", "type")}),
        ("day", "2026-10-31", {("day", "partition")}),
        ("at", "2026-11-01T10:00:00", {("at", "type")}),  # no time zone
        ("at", "yesterday", {("at", "type")}),
        ("kind", "c", {("kind", "enum")}),
        ("code", "ab1", {("code", "regex")}),
        ("code", "AB12", {("code", "regex"), ("code", "max_length")}),
        ("price", "12.505", {("price", "type")}),  # would lose a digit
        ("price", "12,50", {("price", "type")}),
        ("price", "1000.01", {("price", "max")}),
        ("price", "99999.00", {("price", "type")}),  # does not fit numeric(6,2)
        ("ratio", "1.5", {("ratio", "max")}),
        ("ratio", "NaN", {("ratio", "type")}),
        ("flag", "maybe", {("flag", "type")}),
    ],
)
def test_each_bad_value_breaks_the_rules_it_should(field: str, value: str, expected: set) -> None:
    assert rules_broken({**GOOD, field: value}) == expected


def test_signs_and_spellings_that_parse() -> None:
    row = {
        **GOOD,
        "id": "+7",
        "price": "-0.5",
        "ratio": ".25",
        "flag": "NO",
        "at": "2026-11-01 10:00:00.5Z",
    }
    checked = check_rows(raw(row), SPEC, WINDOW)
    assert checked.broken == []
    typed = checked.typed.to_pylist()[0]
    assert (typed["id"], typed["price"], typed["ratio"], typed["flag"]) == (
        7,
        Decimal("-0.50"),
        0.25,
        False,
    )
    assert typed["at"] == datetime(2026, 11, 1, 10, 0, 0, 500_000, tzinfo=UTC)


def test_optional_values_may_be_missing_and_rules_skip_them() -> None:
    assert (
        rules_broken({**GOOD, "at": "", "kind": "", "code": "", "price": "", "flag": ""}) == set()
    )


def test_keys_repeat_across_chunks_and_within_one() -> None:
    keys = KeyTracker(["id"])
    first = pa.table({"id": pa.array([1, 2, 2], pa.int64())})
    second = pa.table({"id": pa.array([3, 1, 4], pa.int64())})
    assert keys.repeats(first).tolist() == [False, False, True]
    assert keys.repeats(second).tolist() == [False, True, False]
    composite = KeyTracker(["a", "b"])
    assert composite.repeats(pa.table({"a": ["x", "x", "x"], "b": [1, 2, 1]})).tolist() == [
        False,
        False,
        True,
    ]


def test_key_tracker_stays_exact_over_many_chunks() -> None:
    keys = KeyTracker(["id"])
    seen: set[int] = set()
    for start in range(0, 50_000, 1_000):
        ids = [(start * 7 + i * 13) % 30_000 for i in range(1_000)]
        expected = []
        for value in ids:
            expected.append(value in seen)
            seen.add(value)
        assert keys.repeats(pa.table({"id": pa.array(ids, pa.int64())})).tolist() == expected


def test_the_orders_spec_loads_and_bad_specs_are_refused(tmp_path: Path) -> None:
    orders = load_spec(Path(__file__).parents[2] / "platform_assets" / "datasets" / "orders.yaml")
    assert orders.primary_key == ["order_id"] and orders.transform_function() is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text(orders.model_dump_json().replace('"order_date"', '"nope"', 1))
    with pytest.raises(DatasetSpecError, match="partition_column must be a declared date"):
        load_spec(bad)
    bad.write_text("name: x\ncolumns: [}")
    with pytest.raises(DatasetSpecError, match=str(bad)):
        load_spec(bad)


ORDERS_SPEC = Path(__file__).parents[2] / "platform_assets" / "datasets" / "orders.yaml"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["columns"].append({"name": "_row_hash", "type": "text"}), "is reserved"),
        (lambda d: d["columns"].append({"name": "x" * 64, "type": "text"}), "columns.10.name"),
        (lambda d: d["columns"].append(dict(d["columns"][0])), "columns declared twice"),
        (lambda d: d["source"].update(directory="../../etc"), "must stay inside the landing"),
        (lambda d: d["source"].update(directory="/etc"), "must stay inside the landing"),
        (lambda d: d["source"].update(pattern="../x_{date}.csv"), "must stay inside the landing"),
        (lambda d: d.update(asset_key=["sales", "t" * 64]), "asset_key.1"),
        (
            lambda d: d["columns"].append({"name": "twice", "type": "text", "regex": r"(a)\1"}),
            "column twice: regex '(a)\\\\1' is not one Arrow's RE2 engine evaluates",
        ),
        (
            lambda d: d["source"].update(ready_marker="../{file}.done"),
            "must name a file beside the data file",
        ),
    ],
    ids=[
        "reserved",
        "too-long",
        "repeated",
        "escape",
        "absolute",
        "pattern-escape",
        "long-key",
        "backreference",
        "marker-elsewhere",
    ],
)
def test_a_spec_that_can_never_work_is_refused_naming_file_and_field(
    tmp_path: Path, change, message: str
) -> None:
    document = yaml.safe_load(ORDERS_SPEC.read_text())
    change(document)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))

    with pytest.raises(DatasetSpecError, match=re.escape(message)) as refused:
        load_spec(bad)
    assert str(bad) in str(refused.value)


def test_a_symbolic_link_out_of_the_landing_zone_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "orders_2026-11-01.csv").write_text("order_id\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders").symlink_to(outside)
    source = load_spec(ORDERS_SPEC).source

    with pytest.raises(LandingFileError, match="outside the landing zone"):
        landing_files(source, landing, WINDOW)


field_text = st.one_of(
    st.sampled_from(["", "1", "0", "-3", "2026-11-01", "2026-11-02", "a", "b", "AB1", "1.5"]),
    st.text(max_size=12),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.fixed_dictionaries({name: field_text for name in SPEC.column_names}), max_size=30)
)
def test_every_row_is_loaded_or_dead_lettered_never_both_never_lost(rows: list[dict]) -> None:
    refs = [f"f.csv:{line}" for line in range(2, len(rows) + 2)]
    lines = np.arange(2, len(rows) + 2)
    batches = [
        RawBatch(raw(*rows[:15]), "f.csv", lines[:15]),
        RawBatch(raw(*rows[15:]), "f.csv", lines[15:]),
    ]

    chunks = list(ingest_partition(SPEC, batches, WINDOW))

    loaded = pa.concat_tables([chunk.rows for chunk in chunks])
    letters = pa.concat_tables([chunk.dead_letters for chunk in chunks]).to_pylist()
    assert sum(chunk.rows_read[WINDOW.key] for chunk in chunks) == len(rows)
    assert loaded.num_rows + len(letters) == len(rows)
    dead_refs = {letter["source_ref"] for letter in letters}
    assert len(dead_refs) == len(letters)
    kept = [row for ref, row in zip(refs, rows, strict=True) if ref not in dead_refs]
    assert len(kept) == loaded.num_rows
    if kept:  # loaded rows meet every rule, and their keys are unique
        assert check_rows(raw(*kept), SPEC, WINDOW).broken == []
        assert loaded.column("id").unique().to_pylist() == loaded.column("id").to_pylist()
    for letter in letters:  # every dead letter keeps its row as read, and says why
        line = int(letter["source_ref"].rsplit(":", 1)[1])
        assert json.loads(letter["payload"][1:]) == rows[line - 2]
        assert letter["error_message"]


@pytest.mark.parametrize(
    ("column", "text", "message"),
    [
        ({"type": "integer"}, "517.0", "'517.0' has a fraction, and the column is integer"),
        ({"type": "integer"}, "9" * 19, "is outside the range of a 64-bit integer"),
        (
            {"type": "decimal", "precision": 6, "scale": 2},
            "227.255",
            "'227.255' has 3 fraction digits; scale 2 allows at most 2 (values are never rounded)",
        ),
        (
            {"type": "decimal", "precision": 5, "scale": 0},
            "1.5",
            "scale 0 allows no fraction digits",
        ),
        (
            {"type": "decimal", "precision": 6, "scale": 2},
            "12345.5",
            "has 5 digits before the point; numeric(6,2) allows at most 4",
        ),
        ({"type": "decimal", "precision": 6, "scale": 2}, "12,50", "numbers are read locale-free"),
        ({"type": "date"}, "2026-02-30", "is not a calendar date as YYYY-MM-DD"),
        (
            {"type": "integer", "accept_integral_decimals": True},
            "517.5",
            "'517.5' has a fraction that is not zero, and the column is integer",
        ),
        (
            {"type": "integer", "accept_integral_decimals": True},
            "9" * 19 + ".0",
            "is outside the range of a 64-bit integer",
        ),
    ],
)
def test_a_dead_letter_says_why_its_value_failed(column: dict, text: str, message: str) -> None:
    spec = SPEC.model_copy(
        update={"columns": [ColumnSpec(name="value", required=True, **column), *SPEC.columns]}
    )
    rows = pa.table({name: [text if name == "value" else "1"] for name in spec.column_names})

    checked = check_rows(rows, spec, WINDOW)
    failures = failures_of(0, checked.broken, rows.to_pylist()[0])

    assert any(f["column"] == "value" and message in f["message"] for f in failures), failures


def test_an_integer_column_may_accept_integral_decimals_never_rounding() -> None:
    column = ColumnSpec(name="value", type="integer", accept_integral_decimals=True)
    spec = SPEC.model_copy(update={"columns": [column, *SPEC.columns]})
    texts = ["517.0", "517", "-3.000", "+8.", "0.0", "517.5", "517.01", "5e2", "1,0"]
    rows = pa.table(
        {name: texts if name == "value" else ["1"] * len(texts) for name in spec.column_names}
    )

    checked = check_rows(rows, spec, WINDOW)

    typed = checked.typed.column("value").to_pylist()
    refused = [rule.rows for rule in checked.broken if rule.column == "value"]
    assert typed[:5] == [517, 517, -3, 8, 0]
    assert [bool(any(mask[i] for mask in refused)) for i in range(len(texts))] == [
        *[False] * 5,
        *[True] * 4,
    ]
    with pytest.raises(ValueError, match="accept_integral_decimals applies to integers"):
        ColumnSpec(name="price", type="double", accept_integral_decimals=True)
