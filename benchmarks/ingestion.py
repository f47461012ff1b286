"""Ingestion benchmark: a generated orders CSV end to end through validation, DLQ and IO manager.

    python benchmarks/ingestion.py [--rows 10000000]

Writes an orders CSV of ``--rows`` rows (about 100 bytes a row, 1% damaged the way real exports
are), then materialises the ``sales/orders`` dataset from it through ``dg.materialize`` and, on
the same file, the baseline a user would write: pandas ``read_csv`` + ``to_sql`` in 1M-row chunks
(one frame of 10M rows would not fit this machine's memory). Each arm runs in its own process so
its peak RSS is its own; ours is also measured on a 1M-row file to show memory stays flat, and
again on the large file with four derived columns declared (``derived_vs_plain``: its time over
the plain run's). Uses
PLATFORM_DATABASE_URL when set, otherwise an embedded server in a temporary directory. The last
line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from support import benchmark_warehouse, checkpoint_server, peak_rss_mb, run_arm

from platform_assets.lib.warehouse.resource import Warehouse

DAY = date(2026, 11, 1)
CHUNK_ROWS = 1_000_000
STATUSES = np.array(["placed", "paid", "shipped", "delivered", "cancelled", "returned"])
CHANNELS = np.array(["web", "mobile", "store", "partner"])
CURRENCIES = np.array(["EUR", "USD", "GBP"])
DAMAGE = {
    "quantity": np.array(["two", "", "-3", "1.5"]),
    "unit_price": np.array(["-12.00", "12,50", "N/A"]),
    "ordered_at": np.array(["2026-13-45T99:00:00+00:00", "yesterday", ""]),
    "currency": np.array(["EURO", "", "XXX"]),
    "order_date": np.array(["2026-10-31"]),
}


def _chunk(start: int, rows: int, rng: np.random.Generator, bad_share: float) -> pa.Table:
    """Rows ``start``.. of the file as text columns, ``bad_share`` of them damaged."""
    ids = np.arange(start + 1, start + rows + 1)
    quantity = rng.integers(1, 9, rows)
    price = np.round(rng.lognormal(3.2, 0.8, rows), 2)
    discount = np.round(price * quantity * rng.choice([0, 0, 0, 0.05, 0.1], rows), 2)
    seconds = rng.integers(0, 86_400, rows)
    ordered_at = (np.datetime64(DAY.isoformat()) + seconds.astype("timedelta64[s]")).astype(str)
    columns = {
        "order_id": ids.astype(str),
        "customer_id": rng.integers(1, 50_000, rows).astype(str),
        "order_date": np.full(rows, DAY.isoformat()),
        "ordered_at": np.char.add(ordered_at, "+00:00"),
        "status": rng.choice(STATUSES, rows),
        "channel": rng.choice(CHANNELS, rows),
        "currency": rng.choice(CURRENCIES, rows),
        "quantity": quantity.astype(str),
        "unit_price": np.char.mod("%.2f", price),
        "discount": np.char.mod("%.2f", discount),
    }
    damaged = np.flatnonzero(rng.random(rows) < bad_share)
    kinds = rng.integers(0, len(DAMAGE) + 1, len(damaged))
    for kind, (column, values) in enumerate(DAMAGE.items()):
        where = damaged[kinds == kind]
        columns[column] = columns[column].astype(object)
        columns[column][where] = rng.choice(values, len(where))
    repeats = damaged[kinds == len(DAMAGE)]
    columns["order_id"] = columns["order_id"].astype(object)
    columns["order_id"][repeats] = (np.maximum(repeats + start, 1)).astype(str)  # an earlier id
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def write_orders_csv(path: Path, rows: int, seed: int = 7, bad_share: float = 0.01) -> None:
    """The benchmark's landing file: ``rows`` order rows, written in 1M-row chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with pa.OSFile(str(path), "wb") as sink:
        for start in range(0, rows, CHUNK_ROWS):
            table = _chunk(start, min(CHUNK_ROWS, rows - start), rng, bad_share)
            options = pacsv.WriteOptions(include_header=start == 0, quoting_style="needed")
            pacsv.write_csv(table, sink, options)


# Declared on top of the orders' columns by the derived arm: one of each cost class (time-zone
# conversion, formatting, joining, a constant).
DERIVED_COLUMNS = [
    {
        "name": "ordered_on_berlin",
        "type": "date",
        "derive": {"kind": "local_date", "column": "ordered_at", "timezone": "Europe/Berlin"},
    },
    {
        "name": "ordered_local",
        "type": "timestamp",
        "derive": {"kind": "local_timestamp", "column": "ordered_at", "timezone": "Europe/Berlin"},
    },
    {
        "name": "order_code",
        "type": "text",
        "derive": {"kind": "concat", "columns": ["currency", "order_id"], "separator": "-"},
    },
    {"name": "source_system", "type": "text", "derive": {"kind": "constant", "value": "shop"}},
]


def run_ours(landing: Path, derived: bool = False) -> dict:
    """Materialise the orders dataset's partition from ``landing`` (child process), with the
    ``DERIVED_COLUMNS`` declared too when ``derived``."""
    import dagster as dg

    from platform_assets.defs.datasets.assets import build_dataset_asset
    from platform_assets.defs.datasets.specs import SPECS_BY_NAME
    from platform_assets.lib.ingestion.spec import DatasetSpec
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.sources.landing_zone import LandingZone

    warehouse = Warehouse(database_url=os.environ.get("PLATFORM_DATABASE_URL") or None)
    spec = SPECS_BY_NAME["orders"]
    if derived:
        declared = spec.model_dump()
        spec = DatasetSpec.model_validate(
            {**declared, "columns": [*declared["columns"], *DERIVED_COLUMNS]}
        )
    orders = build_dataset_asset(spec)
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [orders],
            partition_key=DAY.isoformat(),
            instance=instance,
            resources={
                "warehouse": warehouse,
                "io_manager": PostgresIOManager(warehouse=warehouse),
                "landing": LandingZone(directory=str(landing)),
            },
        )
    seconds = time.perf_counter() - started
    metadata = result.asset_materializations_for_node("sales__orders")[0].metadata
    return {
        "seconds": seconds,
        **{k: metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered")},
    }


def run_pandas(path: Path) -> dict:
    """Baseline: pandas read_csv + to_sql in 1M-row chunks into an indexed table (child process)."""
    import pandas as pd
    import sqlalchemy as sa

    warehouse = Warehouse(database_url=os.environ.get("PLATFORM_DATABASE_URL") or None)
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: _connect(warehouse))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS bench"))
        conn.execute(sa.text("DROP TABLE IF EXISTS bench.orders_to_sql"))
    started = time.perf_counter()
    with engine.begin() as conn:
        for number, frame in enumerate(pd.read_csv(path, chunksize=CHUNK_ROWS)):
            frame.to_sql("orders_to_sql", conn, schema="bench", if_exists="append", index=False)
            if number == 0:
                conn.execute(sa.text("CREATE INDEX ON bench.orders_to_sql (order_date)"))
    return {"seconds": time.perf_counter() - started}


def _connect(warehouse: Warehouse) -> psycopg.Connection:
    return psycopg.connect(warehouse.conninfo())


def empty_tables(warehouse: Warehouse) -> None:
    """Drop what an earlier arm loaded, so every arm loads into a new table."""
    with warehouse.connection() as conn:
        for schema in ("sales", "platform", "bench"):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    checkpoint_server(warehouse)


def measure(arm: str, target: Path) -> dict:
    """Run ``arm`` in a child process; its figures, its own peak RSS among them."""
    return run_arm(__file__, arm, target)


def main() -> None:
    """Write the files, run each arm in its own process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--arm", choices=["ours", "derived", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        if args.arm == "pandas":
            figures = run_pandas(args.target)
        else:
            figures = run_ours(args.target, derived=args.arm == "derived")
        print(json.dumps({**figures, "peak_rss_mb": peak_rss_mb()}))
        return

    with tempfile.TemporaryDirectory(prefix="ingestion-bench-") as scratch:
        small, large = Path(scratch) / "small", Path(scratch) / "large"
        file_name = f"orders_{DAY.isoformat()}.csv"
        started = time.perf_counter()
        write_orders_csv(small / "orders" / file_name, min(args.rows, 1_000_000))
        write_orders_csv(large / "orders" / file_name, args.rows)
        size_mb = (large / "orders" / file_name).stat().st_size / 2**20
        print(f"files written in {time.perf_counter() - started:.1f} s ({size_mb:.0f} MB)")
        with benchmark_warehouse("ingestion-bench-") as warehouse:
            empty_tables(warehouse)  # also starts an embedded server here, not in an arm
            small_run = measure("ours", small)
            print("ours, 1M rows:", small_run)
            empty_tables(warehouse)  # both arms load into a new table
            ours = measure("ours", large)
            print(f"ours, {args.rows} rows:", ours)
            empty_tables(warehouse)
            derived = measure("derived", large)
            print(f"ours with {len(DERIVED_COLUMNS)} derived columns, {args.rows} rows:", derived)
            baseline = measure("pandas", large / "orders" / file_name)
            print(f"pandas read_csv + to_sql, {args.rows} rows:", baseline)
    figures = {
        "rows": args.rows,
        "rows_per_s": round(args.rows / ours["seconds"]),
        "seconds": round(ours["seconds"], 2),
        "peak_rss_mb_1m": small_run["peak_rss_mb"],
        "peak_rss_mb_10m": ours["peak_rss_mb"],
        "vs_pandas_to_sql": round(baseline["seconds"] / ours["seconds"], 2),
        "derived_rows_per_s": round(args.rows / derived["seconds"]),
        "derived_vs_plain": round(derived["seconds"] / ours["seconds"], 2),
        "derived_peak_rss_mb": derived["peak_rss_mb"],
        "pandas_to_sql_seconds": round(baseline["seconds"], 2),
        "pandas_peak_rss_mb": baseline["peak_rss_mb"],
        "read": ours["rows_read"],
        "loaded": ours["rows_loaded"],
        "dead_lettered": ours["rows_dead_lettered"],
        "file_mb": round(size_mb),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
