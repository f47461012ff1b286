"""The seeded landing-file generator and the raw CSV reader."""

import csv
from datetime import date
from pathlib import Path

import pytest

from platform_assets.lib.landing.csv_reader import LandingFileError, read_landing_csv
from platform_assets.lib.landing.sample_orders import ORDER_COLUMNS, write_day
from platform_assets.lib.sample_data import main, seed_customers

DAY = date(2026, 11, 5)


def test_same_seed_and_day_give_identical_files(tmp_path: Path) -> None:
    first = write_day(tmp_path / "a", DAY, orders=300, seed=3, malformed_share=0.05).read_bytes()
    second = write_day(tmp_path / "b", DAY, orders=300, seed=3, malformed_share=0.05).read_bytes()
    other = write_day(tmp_path / "c", DAY, orders=300, seed=4, malformed_share=0.05).read_bytes()
    assert first == second and first != other


def test_cli_writes_a_span_and_keeps_existing_files(tmp_path: Path) -> None:
    args = ["--start", "2026-11-01", "--end", "2026-11-03", "--landing-dir", str(tmp_path)]
    main([*args, "--orders-per-day", "50", "--no-customers"])
    files = sorted((tmp_path / "orders").glob("*.csv"))
    assert [f.name for f in files] == [f"orders_2026-11-0{d}.csv" for d in (1, 2, 3)]
    before = files[0].read_bytes()
    main([*args, "--orders-per-day", "80", "--no-customers"])
    assert files[0].read_bytes() == before


def test_reader_keeps_every_value_as_text_with_line_numbers(tmp_path: Path) -> None:
    path = write_day(tmp_path, DAY, orders=200, seed=1, malformed_share=0.2)
    with path.open(newline="") as handle:
        expected = list(csv.DictReader(handle))
    landed = read_landing_csv(path, ORDER_COLUMNS)
    assert landed.malformed == [] and landed.lines_read == len(expected)
    assert landed.rows.column("quantity").to_pylist() == [row["quantity"] for row in expected]
    assert landed.rows.column("_source_line").to_pylist() == list(range(2, len(expected) + 2))


def test_ragged_lines_are_set_aside_with_their_line_numbers(tmp_path: Path) -> None:
    header = ",".join(ORDER_COLUMNS)
    good = ",".join(str(i) for i in range(10))
    path = tmp_path / "orders_2026-11-05.csv"
    path.write_text("\n".join([header, good, "1,2,3", good, good + ",extra", good]) + "\n")

    landed = read_landing_csv(path, ORDER_COLUMNS)

    assert [(m.line, m.text, m.found_fields) for m in landed.malformed] == [
        (3, "1,2,3", 3),
        (5, good + ",extra", 11),
    ]
    assert landed.rows.column("_source_line").to_pylist() == [2, 4, 6]
    assert landed.lines_read == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot be read as CSV"),
        (b"a,b\n1,2\n", "has columns"),
        (
            (",".join(ORDER_COLUMNS) + "\n" + ",".join(["\xff"] * 10) + "\n").encode("latin-1"),
            "cannot be read as CSV",
        ),
    ],
    ids=["empty", "wrong-header", "not-utf8"],
)
def test_unreadable_files_fail_with_the_file_named(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "orders_2026-11-05.csv"
    path.write_bytes(content)
    with pytest.raises(LandingFileError, match=message) as raised:
        read_landing_csv(path, ORDER_COLUMNS)
    assert str(path) in str(raised.value)


def test_customers_are_seeded_once(clean_warehouse) -> None:
    with clean_warehouse.connection() as conn:
        conn.execute("DROP SCHEMA IF EXISTS crm CASCADE")
    assert seed_customers(clean_warehouse, count=300) == 300
    assert seed_customers(clean_warehouse, count=300) == 0
    with clean_warehouse.connection() as conn:
        assert conn.execute("SELECT count(*), min(id), max(id) FROM crm.customers").fetchone() == (
            300,
            1,
            300,
        )
