"""Shared fixtures: one real PostgreSQL for the session, fresh warehouse schemas per test.

Without ``PLATFORM_DATABASE_URL`` the tests start the embedded server in a temporary data directory
(never the developer's ``./.platform``) and stop it at the end; with it, they use that server.
"""

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from platform_assets.lib import settings
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import (
    embedded_admin_url,
    embedded_database_url,
    stop_embedded_server,
)
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSET_KEYS = {
    "landing/orders_files",
    "sales/orders",
    "sales/daily_order_metrics",
    "platform/dead_letter_records",
    "platform/ingestion_accounting",
    "staging/customers",
    "landing/shop_events_files",
    "web/shop_events",
    "sales/orders_dead_letters",
    "web/shop_events_dead_letters",
    "staging/customers_dead_letters",
}
SAMPLE_DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
SAMPLE_SEED = 11
_session_data_dir: Path | None = None


def _external_servers() -> bool:
    """Whether the tests use servers named by URLs rather than embedded ones of their own."""
    urls = (settings.WAREHOUSE_URL_VAR, settings.DAGSTER_STORAGE_URL_VAR)
    return any(settings.configured_url(variable) for variable in urls)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default, pyproject.toml): a worker per core (2 to 4), each with its own
    embedded server (the tests drop and fill the same schemas, so workers must not share one).
    With an external server, one process: its schemas are shared by whoever connects."""
    return 0 if _external_servers() else min(max(os.cpu_count() or 1, 2), 4)


def pytest_configure(config: pytest.Config) -> None:
    """Point the embedded server at a throwaway data directory before anything starts it: one
    per worker process (the controller of a distributed run starts none)."""
    global _session_data_dir
    controller = config.getoption("dist", "no") != "no" and "PYTEST_XDIST_WORKER" not in os.environ
    if settings.DATA_DIR_VAR not in os.environ and not controller:
        _session_data_dir = Path(tempfile.mkdtemp(prefix="platform-tests-"))
        os.environ[settings.DATA_DIR_VAR] = str(_session_data_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the session's embedded server and delete its data directory."""
    if _session_data_dir is not None:
        stop_embedded_server(_session_data_dir)
        shutil.rmtree(_session_data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse() -> Iterator[Warehouse]:
    """The warehouse the tests write to: ``PLATFORM_DATABASE_URL`` or the embedded server."""
    session_warehouse = Warehouse(database_url=settings.configured_url(settings.WAREHOUSE_URL_VAR))
    yield session_warehouse
    session_warehouse.close()


@pytest.fixture
def clean_warehouse(warehouse: Warehouse) -> Iterator[Warehouse]:
    """The warehouse with the schemas the tests write to (and the platform's own) dropped first."""
    with warehouse.connection() as conn:
        for schema in ("sales", "io_test", "platform"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    yield warehouse


@pytest.fixture(scope="session")
def landing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A landing zone holding seeded sample order files for ``SAMPLE_DAYS``."""
    directory = tmp_path_factory.mktemp("landing")
    for day in SAMPLE_DAYS:
        write_day(directory / "orders", day, orders=400, seed=SAMPLE_SEED, malformed_share=0.03)
    return directory


@pytest.fixture
def resources(clean_warehouse: Warehouse, landing_dir: Path) -> dict[str, object]:
    """Real resources bound to the test warehouse and landing zone."""
    return {
        "warehouse": clean_warehouse,
        "io_manager": PostgresIOManager(warehouse=clean_warehouse),
        "landing": LandingZone(directory=str(landing_dir)),
    }


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An ephemeral instance capturing the platform's structlog lines, as dagster.yaml does."""
    with dg.DagsterInstance.ephemeral(
        settings={
            "python_logs": {
                "managed_python_loggers": ["platform_assets"],
                "python_log_level": "INFO",
            }
        }
    ) as ephemeral:
        yield ephemeral


def admin_conninfo(warehouse: Warehouse) -> str:
    """A connection the tests may set servers up with: the embedded server's superuser, or the
    configured URL (which must then be allowed to create databases)."""
    if warehouse.database_url:
        return warehouse.conninfo()
    return embedded_admin_url(settings.WAREHOUSE_DATABASE)


@contextmanager
def new_database(warehouse: Warehouse, prefix: str, owner: str = roles.OWNER) -> Iterator[str]:
    """URL of a new, empty database on the warehouse's server owned by ``owner``, as that role
    (as the configured URL's own role on an external server), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_conninfo(warehouse), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if not warehouse.database_url:
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
    base = make_url(
        warehouse.database_url or embedded_database_url(settings.WAREHOUSE_DATABASE, owner)
    )
    yield base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_conninfo(warehouse), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def instance_database_url(warehouse: Warehouse) -> Iterator[str]:
    """URL of a new, empty database for one test's Dagster instance (runs, events, check
    history), dropped afterwards: what one `dg dev` test records cannot show up in another's
    UI."""
    with new_database(warehouse, "dagster_test", roles.INSTANCE) as url:
        yield url
