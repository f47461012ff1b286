"""A PostgreSQL server restarted, or the load's connection dropped, in the middle of a load: the
run retries and succeeds by itself.

Each test runs its own embedded server (not the session's). One stops it while the partition's
COPY is streaming, keeps it down for a few seconds, and starts it again: lost and refused
connections carry no SQLSTATE, so this is what proves they are recognised as transient. The other
terminates the loading session alone, as an administrator or a failover would.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import (
    embedded_admin_url,
    embedded_database_url,
    embedded_server,
    stop_embedded_server,
)
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = date(2026, 11, 14)
DOWN_SECONDS = 3


@pytest.fixture
def own_server() -> Iterator[Path]:
    """An embedded server of this test's own, deleted afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="restart-test-"))
    try:
        embedded_server(data_dir)
        yield data_dir
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def start_in_another_process(data_dir: Path) -> None:
    """Start the server again as ``platform-db start`` would (pgserver caches its handle per
    process, so this process cannot start it twice)."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from platform_assets.lib.server.embedded import main; main()",
            "start",
        ],
        env={**os.environ, "PLATFORM_DATA_DIR": str(data_dir)},
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_for_copy(url: str, timeout_s: float = 60) -> bool:
    """Whether a COPY into the warehouse is seen streaming within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as observer:
        while time.monotonic() < deadline:
            (copying,) = observer.execute(
                "SELECT count(*) FROM pg_stat_progress_copy WHERE command = 'COPY FROM'"
                " AND tuples_processed > 0"
            ).fetchone()
            if copying:
                return True
            time.sleep(0.005)
    return False


def load_interrupted_mid_copy(
    own_server: Path, tmp_path: Path, instance: dg.DagsterInstance, interrupt: Callable[[], None]
) -> None:
    """Load a 400,000-order day, ``interrupt`` it once its COPY streams, and check that the run
    retried by itself and succeeded with the partition whole and every line accounted for."""
    url = embedded_database_url("warehouse", roles.OWNER, own_server)
    path = write_day(tmp_path / "orders", DAY, orders=400_000, seed=3, malformed_share=0.01)
    warehouse = Warehouse(database_url=url)
    resources = {
        "warehouse": warehouse,
        "io_manager": PostgresIOManager(warehouse=warehouse),
        "landing": LandingZone(directory=str(tmp_path)),
    }
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    run = threading.Thread(
        target=lambda: outcome.update(
            result=dg.materialize(
                [ORDERS],
                partition_key=DAY.isoformat(),
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )
        )
    )
    run.start()
    assert wait_for_copy(url), "the load never reached its COPY"
    interrupt()
    run.join(timeout=300)

    result = outcome["result"]
    assert result.success
    retries = [
        event
        for event in instance.all_logs(result.run_id)
        if "transient_error_retrying" in event.user_message
    ]
    assert retries, "the interruption was not met by a retry"
    metadata = result.asset_materializations_for_node("sales__orders")[0].metadata
    loaded = metadata["rows_loaded"].value
    lines = path.read_bytes().count(b"\n") - 1
    assert metadata["rows_read"].value == lines and loaded > 0.95 * lines
    try:
        assert fetch_all(warehouse, sql.SQL("SELECT count(*) FROM sales.orders")) == [(loaded,)]
        accounted = sql.SQL(
            "SELECT lines_loaded + lines_dead_lettered FROM platform.ingestion_file_lines"
        )
        assert fetch_all(warehouse, accounted) == [(lines,)]
    finally:
        warehouse.close()


def test_a_server_restart_mid_copy_ends_in_a_successful_run(
    own_server: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    def restart() -> None:
        stop_embedded_server(own_server)  # fast shutdown: every session is terminated
        time.sleep(DOWN_SECONDS)
        start_in_another_process(own_server)

    load_interrupted_mid_copy(own_server, tmp_path, instance, restart)


def test_a_connection_dropped_mid_copy_ends_in_a_successful_run(
    own_server: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    def drop_the_loading_connection() -> None:
        admin = embedded_admin_url("warehouse", own_server)
        with psycopg.connect(admin, autocommit=True) as conn:
            (dropped,) = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_progress_copy WHERE command = 'COPY FROM'"
            ).fetchone()
        assert dropped == 1

    load_interrupted_mid_copy(own_server, tmp_path, instance, drop_the_loading_connection)
