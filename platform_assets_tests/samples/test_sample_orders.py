"""The seeded landing-file generator and the sample-data command."""

from datetime import date
from pathlib import Path

from platform_assets.lib.samples.sample_data import main, seed_customers
from platform_assets.lib.samples.sample_orders import write_day

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
    events = sorted((tmp_path / "shop_events").glob("*.parquet"))
    assert [f.name for f in events] == [f"shop_events_2026-11-0{d}.parquet" for d in (1, 2, 3)]
    before = files[0].read_bytes(), events[0].read_bytes()
    main([*args, "--orders-per-day", "80", "--events-per-day", "9", "--no-customers"])
    assert (files[0].read_bytes(), events[0].read_bytes()) == before


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
