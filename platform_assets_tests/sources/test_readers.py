"""Streaming landing readers: text kept as it is, line numbers, and what cannot be read."""

import csv
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from platform_assets.lib.samples.sample_orders import ORDER_COLUMNS, write_day
from platform_assets.lib.sources.landing_readers import LandingFileError, stream_csv
from platform_assets.lib.sources.parquet_reader import stream_parquet

DAY = date(2026, 11, 5)
HEADER = ",".join(ORDER_COLUMNS)
GOOD = ",".join(str(i) for i in range(10))


def rows_and_refs(batches: list) -> tuple[list[dict], list[str]]:
    rows = [row for batch in batches for row in batch.rows.to_pylist()]
    return rows, [ref for batch in batches for ref in batch.source_refs]


def test_csv_values_stay_text_with_their_line_numbers_across_chunks(tmp_path: Path) -> None:
    path = write_day(tmp_path, DAY, orders=3000, seed=1, malformed_share=0.2)
    with path.open(newline="") as handle:
        expected = list(csv.DictReader(handle))

    batches = list(stream_csv(path, ORDER_COLUMNS, block_bytes=16_384))

    assert len(batches) > 5  # small blocks: many chunks
    rows, refs = rows_and_refs(batches)
    assert rows == expected
    assert refs == [f"{path.name}:{line}" for line in range(2, len(expected) + 2)]
    assert sum(batch.records_read for batch in batches) == len(expected)


def test_ragged_lines_are_set_aside_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    lines = [HEADER, GOOD, "1,2,3", GOOD, GOOD + ",extra", GOOD, "9"]
    path.write_text("\n".join(lines) + "\n")

    batches = list(stream_csv(path, ORDER_COLUMNS))

    unreadable = [u for batch in batches for u in batch.unreadable]
    assert [(u.source_ref, u.payload, u.error_class) for u in unreadable] == [
        ("orders.csv:3", {"line": "1,2,3"}, "MalformedCsvLine"),
        ("orders.csv:5", {"line": GOOD + ",extra"}, "MalformedCsvLine"),
        ("orders.csv:7", {"line": "9"}, "MalformedCsvLine"),
    ]
    assert rows_and_refs(batches)[1] == ["orders.csv:2", "orders.csv:4", "orders.csv:6"]
    assert sum(batch.records_read for batch in batches) == 6


def test_every_line_is_a_record_empty_ones_included(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("\n".join([HEADER, GOOD, "", GOOD]))  # no line break at the end

    batches = list(stream_csv(path, ORDER_COLUMNS, unterminated_last_line="load"))

    (empty,) = [u for batch in batches for u in batch.unreadable]
    assert (empty.source_ref, empty.payload) == ("orders.csv:3", {"line": ""})
    assert rows_and_refs(batches)[1] == ["orders.csv:2", "orders.csv:4"]


def test_a_field_that_is_not_utf8_sets_aside_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    bad = ",".join(["1", "2", "caf\xe9"] + ["x"] * 7).encode("latin-1")
    path.write_bytes(b"\n".join([HEADER.encode(), GOOD.encode(), bad, GOOD.encode()]) + b"\n")

    batches = list(stream_csv(path, ORDER_COLUMNS))

    (unreadable,) = [u for batch in batches for u in batch.unreadable]
    assert unreadable.source_ref == "orders.csv:3" and unreadable.error_class == "InvalidEncoding"
    assert unreadable.payload["order_date"] == "caf\\xe9"
    assert unreadable.detail == {
        "columns": ["order_date"],
        "raw_base64": {"order_date": "Y2Fm6Q=="},
    }
    assert rows_and_refs(batches)[1] == ["orders.csv:2", "orders.csv:4"]


def test_a_ten_megabyte_field_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    huge = "x" * 10_000_000
    path.write_text("\n".join([HEADER, GOOD, GOOD.replace("4", huge, 1)]) + "\n")

    rows, refs = rows_and_refs(list(stream_csv(path, ORDER_COLUMNS)))

    assert len(rows) == 2 and rows[1]["status"] == huge and refs[1] == "orders.csv:3"


def test_header_only_file_gives_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "\n")
    assert rows_and_refs(list(stream_csv(path, ORDER_COLUMNS))) == ([], [])


def test_extra_columns_are_refused_or_ignored_as_declared(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + ",note\n" + GOOD + ",hello\n")
    with pytest.raises(LandingFileError, match=r"undeclared column\(s\) \['note'\]"):
        list(stream_csv(path, ORDER_COLUMNS))
    rows, _ = rows_and_refs(list(stream_csv(path, ORDER_COLUMNS, extra_columns="ignore")))
    assert list(rows[0]) == ORDER_COLUMNS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"a,b\n1,2\n", "lacks the declared column"),
        (b"\xff\xfe,x\n", "header that is not UTF-8"),
    ],
    ids=["empty", "missing-columns", "header-not-utf8"],
)
def test_unreadable_files_fail_with_the_file_named(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "orders.csv"
    path.write_bytes(content)
    with pytest.raises(LandingFileError, match=message) as raised:
        list(stream_csv(path, ORDER_COLUMNS))
    assert str(path) in str(raised.value)


def test_missing_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(LandingFileError, match="does not exist"):
        list(stream_csv(tmp_path / "nope.csv", ORDER_COLUMNS))
    with pytest.raises(LandingFileError, match="does not exist"):
        list(stream_parquet(tmp_path / "nope.parquet", ORDER_COLUMNS))


def test_parquet_values_are_rendered_as_text_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "at": pa.array([0, 1_000_000, None], pa.timestamp("us", tz="UTC")),
            "price": pa.array(["1.50", "2.00", "3.25"]).cast(pa.decimal128(5, 2)),
        }
    )
    pq.write_table(table, path)

    batches = list(stream_parquet(path, ["id", "at", "price"], batch_rows=2))

    rows, refs = rows_and_refs(batches)
    assert rows == [
        {"id": "1", "at": "1970-01-01 00:00:00.000000Z", "price": "1.50"},
        {"id": "2", "at": "1970-01-01 00:00:01.000000Z", "price": "2.00"},
        {"id": "3", "at": None, "price": "3.25"},
    ]
    assert refs == ["orders.parquet:row 1", "orders.parquet:row 2", "orders.parquet:row 3"]
    with pytest.raises(LandingFileError, match=r"lacks the declared column\(s\) \['qty'\]"):
        list(stream_parquet(path, ["id", "qty"]))
