"""Migration benchmark: the customer-tier backfill on 1M customers with 10M orders.

    python benchmarks/migration_backfill.py [--customers 1000000] [--orders 10000000]

Runs the real guarded job (confirm: true) while another session keeps issuing single-row UPDATEs
on random customers, and reports the backfill's rows per second, its median batch time and the
longest any of those UPDATEs waited. Uses PLATFORM_DATABASE_URL when set, otherwise an embedded
server in a temporary directory. The last line printed is one JSON object with the figures.
"""

import argparse
import json
import random
import threading
import time

import psycopg
from support import benchmark_warehouse

from platform_assets.defs.migrations.jobs import migrate_job, migration_resources
from platform_assets.lib.migrations.lock import MigrationLock

SETUP = [
    "DROP SCHEMA IF EXISTS crm CASCADE",
    "DROP SCHEMA IF EXISTS platform CASCADE",
    "DROP TABLE IF EXISTS sales.orders",
    "CREATE SCHEMA crm",
    "CREATE SCHEMA IF NOT EXISTS sales",
    "CREATE TABLE crm.customers (id bigint PRIMARY KEY, name text NOT NULL, email text)",
    "CREATE TABLE sales.orders (order_id bigint, customer_id bigint NOT NULL)",
]


def seed(conninfo: str, customers: int, orders: int) -> None:
    """Customers, and orders skewed so that every tier occurs (a few customers order a lot)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in SETUP:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO crm.customers SELECT i, 'customer ' || i, i || '@example.com'"
            " FROM generate_series(1, %s) AS i",
            (customers,),
        )
        conn.execute(
            "INSERT INTO sales.orders SELECT i, 1 + floor(power(random(), 3) * %s)::bigint"
            " FROM generate_series(1, %s) AS i",
            (customers, orders),
        )
        conn.execute("CREATE INDEX ON sales.orders (customer_id)")
        conn.execute("VACUUM ANALYZE")


def application(conninfo: str, customers: int, stop: threading.Event, waits: list[float]) -> None:
    """Single-row updates of random customers, as an application would, timing each."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while not stop.is_set():
            started = time.perf_counter()
            conn.execute(
                "UPDATE crm.customers SET email = email WHERE id = %s",
                (random.randint(1, customers),),
            )
            waits.append(time.perf_counter() - started)
            time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()

    with benchmark_warehouse("bench-migration-") as warehouse:
        conninfo = warehouse.conninfo()
        seeded = time.perf_counter()
        seed(conninfo, args.customers, args.orders)
        print(f"seeded in {time.perf_counter() - seeded:.1f}s", flush=True)

        stop, waits = threading.Event(), []
        writer = threading.Thread(target=application, args=(conninfo, args.customers, stop, waits))
        writer.start()
        try:
            result = migrate_job.execute_in_process(
                run_config={
                    "ops": {"guard": {"config": {"confirm": True, "batch_size": args.batch_size}}}
                },
                resources={
                    "migration_lock": MigrationLock(warehouse=warehouse),
                    **migration_resources(),
                },
            )
        finally:
            stop.set()
            writer.join()
        assert result.success
        metadata = next(
            e for e in result.all_events if e.step_key == "backfill" and e.is_successful_output
        ).step_output_data.metadata
        backfill_s = metadata["elapsed_s"].value
        figures = {
            "customers": args.customers,
            "orders": args.orders,
            "batches": metadata["batches"].value,
            "backfill_s": round(backfill_s, 2),
            "rows_per_s": round(metadata["rows"].value / backfill_s),
            "batch_s": round(metadata["median_batch_s"].value, 4),
            "longest_batch_s": round(metadata["longest_batch_s"].value, 4),
            "concurrent_updates": len(waits),
            "max_concurrent_update_wait_s": round(max(waits), 4),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
