"""The embedded server starts when no URL is configured, and is left alone when one is."""

import shutil
import tempfile
from contextlib import closing
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._daemon.controller import create_daemon_of_type
from dagster._daemon.run_coordinator import QueuedRunCoordinatorDaemon

from platform_assets.defs.resources import build_warehouse
from platform_assets.lib import settings
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import embedded_admin_url, stop_embedded_server
from platform_assets.lib.server.instance_storage import instance_storage_url
from platform_assets.lib.server.run_coordinator import PlatformRunCoordinator
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT


@pytest.fixture
def session_url() -> str:
    """A libpq URL of the tests' server, standing in for an external one."""
    return settings.configured_url(settings.WAREHOUSE_URL_VAR) or embedded_admin_url("postgres")


def test_embedded_server_starts_without_a_url(monkeypatch) -> None:
    # Outside pytest's own temporary root: the server runs as another user, who must traverse
    # the directory's parents, and each pytest session makes that root private again.
    tmp_path = Path(tempfile.mkdtemp(prefix="platform-embedded-test-"))
    monkeypatch.setenv(settings.DATA_DIR_VAR, str(tmp_path))
    monkeypatch.delenv(settings.WAREHOUSE_URL_VAR, raising=False)
    monkeypatch.delenv(settings.DAGSTER_STORAGE_URL_VAR, raising=False)
    warehouse = Warehouse()
    try:
        with warehouse.connection() as conn:
            database, app = conn.execute(
                "SELECT current_database(), current_setting('application_name')"
            ).fetchone()
        assert (database, app) == ("warehouse", "platform_assets")
        assert (tmp_path / "pgdata" / "PG_VERSION").exists()
        storage_url = instance_storage_url()
        assert storage_url.startswith("postgresql+psycopg2://")
        assert f"host={tmp_path / 'pgdata'}" in storage_url
    finally:
        warehouse.close()
        stop_embedded_server(tmp_path)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_configured_urls_never_start_the_embedded_server(
    tmp_path: Path, monkeypatch, session_url: str
) -> None:
    monkeypatch.setenv(settings.DATA_DIR_VAR, str(tmp_path))
    monkeypatch.setenv(settings.WAREHOUSE_URL_VAR, session_url)
    monkeypatch.setenv(settings.DAGSTER_STORAGE_URL_VAR, session_url)
    monkeypatch.setenv(settings.MIGRATOR_URL_VAR, session_url)

    warehouse = build_warehouse(settings.WAREHOUSE_URL_VAR, roles.OWNER)
    migrator = build_warehouse(settings.MIGRATOR_URL_VAR, roles.MIGRATOR)
    resolved = Warehouse(database_url=settings.configured_url(settings.WAREHOUSE_URL_VAR))
    with closing(resolved), resolved.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert isinstance(warehouse.database_url, dg.EnvVar)
    assert isinstance(migrator.database_url, dg.EnvVar)
    assert instance_storage_url().startswith("postgresql+psycopg2://")
    assert not (tmp_path / "pgdata").exists()


def test_dagster_yaml_keeps_runs_in_postgres(tmp_path: Path, resources) -> None:
    """The repository's dagster.yaml gives an instance whose runs live in the Postgres database."""
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(REPO_ROOT))
    with dg.DagsterInstance.from_ref(ref) as instance:
        from platform_assets_tests.sales.test_pipeline import ORDERS

        result = dg.materialize(
            [ORDERS], partition_key="2026-11-01", resources=resources, instance=instance
        )
        assert result.success
    storage_url = instance_storage_url().replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(storage_url) as conn:
        stored = conn.execute(
            "SELECT status FROM runs WHERE run_id = %s", (result.run_id,)
        ).fetchone()
    assert stored == ("SUCCESS",)


def test_dagster_yaml_bounds_runs_and_warehouse_steps(tmp_path: Path) -> None:
    """The run queue, the warehouse pool and the files' places, as dagster.yaml declares them."""
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(REPO_ROOT))
    with dg.DagsterInstance.from_ref(ref) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.run_queue_config.tag_concurrency_limits == [
            {"key": "dagster/backfill", "limit": 3}
        ]
        assert concurrency.pool_config.default_pool_limit == 3
        assert isinstance(instance.run_coordinator, PlatformRunCoordinator)
        assert instance.run_coordinator.dequeue_interval_seconds == 0.5
        queue_daemon = create_daemon_of_type(QueuedRunCoordinatorDaemon.daemon_type(), instance)
        assert queue_daemon.interval_seconds == 0.5  # the daemon dagster dev runs looks so often
        data_dir = settings.data_dir()
        assert instance.compute_log_manager.get_captured_local_path(["k"], "out").startswith(
            str(data_dir / "compute_logs")
        )
        assert instance.get_settings("auto_materialize")["use_sensors"] is True
