"""A real customers table with order history, a loaded readings dataset, and a way to run the
migration job against them."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from platform_assets.defs.migrations.jobs import migrate_job, migration_resources
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.migrations.chains import SAMPLE_CHAIN
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.migrations.model import Migration, discover
from platform_assets.lib.server import roles
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.test_spec_changes import DAY

CUSTOMERS = 500

# The sample's chain: the example migration every test of the job applies.
SAMPLE_MIGRATIONS = discover(SAMPLE_CHAIN.package, SAMPLE_CHAIN.name)


@pytest.fixture
def shop(clean_warehouse: Warehouse) -> Iterator[Warehouse]:
    """crm.customers (500) and sales.orders: customer i has i % 120 orders, so all tiers occur."""
    with clean_warehouse.connection() as conn:
        for schema in ("crm", "platform", "migration_backup"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute("CREATE SCHEMA crm")
        conn.execute("CREATE SCHEMA IF NOT EXISTS sales")
        conn.execute(
            "CREATE TABLE crm.customers (id bigint PRIMARY KEY, name text NOT NULL,"
            " email text, score text, created_at timestamptz NOT NULL DEFAULT '2026-01-01')"
        )
        conn.execute(
            "INSERT INTO crm.customers (id, name, email, score)"
            " SELECT i, 'customer ' || i,"
            " CASE WHEN i %% 5 = 0 THEN NULL ELSE i || '@example.com' END, (i * 7 %% 1000)::text"
            " FROM generate_series(1, %s) AS i",
            (CUSTOMERS,),
        )
        conn.execute(
            "CREATE TABLE sales.orders (order_id bigserial PRIMARY KEY, customer_id bigint)"
        )
        conn.execute(
            "INSERT INTO sales.orders (customer_id)"
            " SELECT c FROM generate_series(1, %s) AS c, generate_series(1, c %% 120)",
            (CUSTOMERS,),
        )
    with psycopg.connect(clean_warehouse.conninfo(), autocommit=True) as conn:
        conn.execute("ANALYZE crm.customers")
    yield clean_warehouse


def as_migrator(warehouse: Warehouse) -> Warehouse:
    """The migrate job's own connection to ``warehouse``: as the migrator role on the embedded
    server (the configured URL's role on an external one)."""
    return Warehouse(database_url=warehouse.database_url, embedded_role=roles.MIGRATOR)


def run_migrations(
    warehouse: Warehouse,
    migrations: list[Migration] | None = None,
    raise_on_error: bool = False,
    dataset_specs: list[DatasetSpec] | None = None,
    **config: object,
) -> dg.ExecuteInProcessResult:
    """Run the migration job for real against ``warehouse`` with ``config`` for its guard op,
    planning from ``dataset_specs`` (none unless given)."""
    return migrate_job.execute_in_process(
        run_config={"ops": {"guard": {"config": config}}},
        resources={
            "migration_lock": MigrationLock(warehouse=as_migrator(warehouse)),
            **migration_resources(
                SAMPLE_MIGRATIONS if migrations is None else migrations, dataset_specs or []
            ),
        },
        raise_on_error=raise_on_error,
    )


@pytest.fixture
def readings(tmp_path: Path, resources: dict) -> dict:
    """Resources with a landing zone holding the day's three readings (whole numbers)."""
    (tmp_path / "readings").mkdir()
    rows = [f"1,{DAY},a,5", f"2,{DAY},b,-7", f"3,{DAY},c,"]
    (tmp_path / "readings" / f"readings_{DAY}.csv").write_text(
        "reading_id,taken_on,sensor,value\n" + "\n".join(rows) + "\n"
    )
    with resources["warehouse"].connection() as conn:
        conn.execute("DROP SCHEMA IF EXISTS migration_backup CASCADE")
    return {**resources, "landing": LandingZone(directory=str(tmp_path))}
