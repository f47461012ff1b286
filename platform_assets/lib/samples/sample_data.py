"""``platform-sample-data``: everything ``dagster dev`` needs to have data out of the box.

Seeded daily landing files, one for every day from each dataset's first partition to yesterday
(so the partitions start where the data does): the orders export (CSV) and the web shop's
analytics export (Parquet, Berlin days). And the ``crm.customers`` table their customer ids refer
to (the source table of the customer-tier migration). All keep what already exists.

The files go to the landing zone the platform reads: a local directory, or the S3 bucket and
prefix of ``PLATFORM_LANDING_URL``, where each file is uploaded as soon as it is written (one at a
time, as one atomic PUT) and its local copy removed.
"""

import argparse
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import platform_assets
from platform_assets.lib import settings
from platform_assets.lib.ingestion.spec import load_spec
from platform_assets.lib.samples.sample_events import events_file_name, write_events_day
from platform_assets.lib.samples.sample_orders import CUSTOMER_COUNT, orders_file_name, write_day
from platform_assets.lib.sources.object_landing import ObjectLanding, is_object_store
from platform_assets.lib.warehouse.resource import Warehouse

# The datasets the files are for: each one's files start on its first partition.
DATASETS_DIR = Path(platform_assets.__file__).parent / "datasets"
ORDERS_SPEC = load_spec(DATASETS_DIR / "orders.yaml")
EVENTS_SPEC = load_spec(DATASETS_DIR / "shop_events.yaml")

CUSTOMERS_DDL = [
    "CREATE SCHEMA IF NOT EXISTS crm",
    """
    CREATE TABLE IF NOT EXISTS crm.customers (
        id bigint PRIMARY KEY,
        name text NOT NULL,
        email text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]


def seed_customers(warehouse: Warehouse, count: int = CUSTOMER_COUNT) -> int:
    """Customers 1..``count`` (the ids the sample orders use); existing rows are kept."""
    with warehouse.connection() as conn:
        for statement in CUSTOMERS_DDL:
            conn.execute(statement)
        inserted = conn.execute(
            "INSERT INTO crm.customers (id, name, email)"
            " SELECT i, 'Customer ' || i, 'customer' || i || '@example.com'"
            " FROM generate_series(1, %s) AS i ON CONFLICT (id) DO NOTHING",
            (count,),
        ).rowcount
    return inserted


def write_daily_files(
    directory: Path,
    existing: set[str],
    days: tuple[date, date],
    file_name: Callable[[date], str],
    write: Callable[[Path, date], Path],
    overwrite: bool,
    keep: Callable[[Path], None] = lambda path: None,
) -> int:
    """``write(directory, day)`` for each day of the span ``days`` whose file (``file_name``) is
    not among the ``existing`` names, or every day with ``overwrite``; ``keep`` is handed each
    file written. Return how many were written."""
    written = 0
    day, end = days
    while day <= end:
        if overwrite or file_name(day) not in existing:
            keep(write(directory, day))
            written += 1
        day += timedelta(days=1)
    return written


def land_daily_files(
    landing: str,
    dataset_directory: str,
    days: tuple[date, date],
    file_name: Callable[[date], str],
    write: Callable[[Path, date], Path],
    overwrite: bool,
) -> str:
    """Write a dataset's files for ``days`` into the landing zone ``landing`` (a directory, or
    an ``s3://bucket/prefix`` URL) under ``dataset_directory``; return a line saying what was
    written where."""
    span = f"{days[0]}..{days[1]}"
    if not is_object_store(landing):
        directory = Path(landing) / dataset_directory
        existing = {path.name for path in directory.glob("*")}
        written = write_daily_files(directory, existing, days, file_name, write, overwrite)
        return f"{written} landing file(s) written to {directory} for {span}"
    zone = ObjectLanding(landing)
    existing = {found.name for found in zone.objects(dataset_directory)}

    def upload(path: Path) -> None:
        zone.put(dataset_directory, path)
        path.unlink()

    with tempfile.TemporaryDirectory(prefix="platform-sample-data-") as staging:
        written = write_daily_files(
            Path(staging), existing, days, file_name, write, overwrite, keep=upload
        )
    return f"{written} landing file(s) uploaded to {zone.url}/{dataset_directory} for {span}"


def main(argv: list[str] | None = None) -> None:
    """Write sample order and shop-event files for a span of days and seed crm.customers (keeps
    what exists)."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    parser = argparse.ArgumentParser(prog="platform-sample-data", description=main.__doc__)
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=ORDERS_SPEC.partitions.start,
        help="first day (default: the first partition of the orders dataset, so every partition"
        " has data; the events start no earlier than their own first partition)",
    )
    parser.add_argument("--end", type=date.fromisoformat, default=yesterday)
    parser.add_argument("--orders-per-day", type=int, default=500)
    parser.add_argument("--malformed-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events-per-day", type=int, default=300)
    parser.add_argument(
        "--landing",
        "--landing-dir",
        dest="landing",
        default=settings.landing_root(),
        help="the landing zone: a directory, or s3://bucket/prefix (default: PLATFORM_LANDING_URL,"
        " else PLATFORM_LANDING_DIR, else the data directory's landing/)",
    )
    parser.add_argument("--overwrite", action="store_true", help="rewrite files that exist")
    parser.add_argument("--no-customers", action="store_true", help="do not seed crm.customers")
    args = parser.parse_args(argv)
    print(
        land_daily_files(
            args.landing,
            ORDERS_SPEC.source.directory,
            (args.start, args.end),
            orders_file_name,
            lambda directory, day: write_day(
                directory, day, args.orders_per_day, args.seed, args.malformed_share
            ),
            args.overwrite,
        )
    )
    print(
        land_daily_files(
            args.landing,
            EVENTS_SPEC.source.directory,
            (max(args.start, EVENTS_SPEC.partitions.start), args.end),
            events_file_name,
            lambda directory, day: write_events_day(directory, day, args.events_per_day, args.seed),
            args.overwrite,
        )
    )
    if not args.no_customers:
        warehouse = Warehouse(database_url=settings.configured_url(settings.WAREHOUSE_URL_VAR))
        try:
            print(f"{seed_customers(warehouse)} customer(s) added to crm.customers")
        finally:
            warehouse.close()
