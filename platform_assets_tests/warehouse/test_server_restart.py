"""A PostgreSQL server restarted, or the load's connection dropped, in the middle of a load: the
run retries and succeeds by itself. Replays, exports, discards and extracts launched while the
server is down wait for it and succeed by themselves too.

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
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from platform_assets.defs.datasets.discard import discard_dead_letters_job
from platform_assets.defs.datasets.export import export_dead_letters_job
from platform_assets.defs.datasets.replay import replay_dead_letters_job
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
from platform_assets_tests.datasets.test_table_source import create_source, extract
from platform_assets_tests.faults.test_killed_replays import STRICT_ORDERS
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
    own_server: Path,
    tmp_path: Path,
    instance: dg.DagsterInstance,
    interrupt: Callable[[], None],
    days: int = 1,
) -> None:
    """Load 400,000 orders on one day, or 99,999 a day over a backfill's range of ``days`` days in
    one run,
    ``interrupt`` the load once its COPY streams, and check that the run retried by itself and
    succeeded with every day whole and every line accounted for."""
    url = embedded_database_url("warehouse", roles.OWNER, own_server)
    loaded_days = [DAY + timedelta(days=n) for n in range(days)]
    # A range's days hold at most 99,999 orders: the sample's ids are the day's ordinal * 100,000
    # + n, so more would repeat the next day's ids.
    per_day = 400_000 if days == 1 else 99_999
    paths = [
        write_day(tmp_path / "orders", day, orders=per_day, seed=3 + n, malformed_share=0.01)
        for n, day in enumerate(loaded_days)
    ]
    warehouse = Warehouse(database_url=url)
    resources = {
        "warehouse": warehouse,
        "io_manager": PostgresIOManager(warehouse=warehouse),
        "landing": LandingZone(directory=str(tmp_path)),
    }
    which = (
        {"partition_key": DAY.isoformat()}
        if days == 1
        else {
            "tags": {
                "dagster/asset_partition_range_start": loaded_days[0].isoformat(),
                "dagster/asset_partition_range_end": loaded_days[-1].isoformat(),
            }
        }
    )
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    run = threading.Thread(
        target=lambda: outcome.update(
            result=dg.materialize(
                [ORDERS], resources=resources, instance=instance, raise_on_error=False, **which
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
    materialized = result.asset_materializations_for_node("sales__orders")
    assert len(materialized) == days
    loaded = sum(m.metadata["rows_loaded"].value for m in materialized)
    lines = sum(path.read_bytes().count(b"\n") - 1 for path in paths)
    assert sum(m.metadata["rows_read"].value for m in materialized) == lines
    assert loaded > 0.95 * lines
    try:
        assert fetch_all(warehouse, sql.SQL("SELECT count(*) FROM sales.orders")) == [(loaded,)]
        accounted = sql.SQL(
            "SELECT sum(lines_loaded + lines_dead_lettered) FROM platform.ingestion_file_lines"
        )
        assert fetch_all(warehouse, accounted) == [(lines,)]
    finally:
        warehouse.close()


def restarter(own_server: Path) -> Callable[[], None]:
    """Stop the server (a fast shutdown terminates every session), keep it down a few seconds,
    and start it again."""

    def restart() -> None:
        stop_embedded_server(own_server)
        time.sleep(DOWN_SECONDS)
        start_in_another_process(own_server)

    return restart


def test_a_server_restart_mid_copy_ends_in_a_successful_run(
    own_server: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    load_interrupted_mid_copy(own_server, tmp_path, instance, restarter(own_server))


def test_a_server_restart_mid_backfill_ends_in_a_successful_run(
    own_server: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A backfill of three days runs as one range run (its backfill policy): restarted in it."""
    load_interrupted_mid_copy(own_server, tmp_path, instance, restarter(own_server), days=3)


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


def outage(own_server: Path) -> threading.Thread:
    """Stop the server now and start it again ``DOWN_SECONDS`` later, in the background."""
    stop_embedded_server(own_server)

    def come_back() -> None:
        time.sleep(DOWN_SECONDS)
        start_in_another_process(own_server)

    back = threading.Thread(target=come_back)
    back.start()
    return back


def test_replays_exports_discards_and_extracts_ride_out_an_outage(
    own_server: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """Each launched while the server is down: each waits for it and succeeds by itself."""
    warehouse = Warehouse(database_url=embedded_database_url("warehouse", roles.OWNER, own_server))
    write_day(tmp_path / "orders", DAY, orders=2_000, seed=5, malformed_share=0.03)
    loaded = dg.materialize(
        [STRICT_ORDERS],
        partition_key=DAY.isoformat(),
        resources={
            "warehouse": warehouse,
            "io_manager": PostgresIOManager(warehouse=warehouse),
            "landing": LandingZone(directory=str(tmp_path)),
        },
        instance=instance,
    )
    assert loaded.success
    create_source(warehouse)

    def survived(launch: Callable[[], dg.ExecuteInProcessResult], retried: bool = True) -> None:
        """``launch`` during an outage succeeds; with ``retried``, after retrying (the extract's
        reads wait in the connection pool instead)."""
        back = outage(own_server)
        try:
            result = launch()
        finally:
            back.join()
        assert result.success
        messages = [event.user_message for event in instance.all_logs(result.run_id)]
        if retried:
            assert any("transient_error_retrying" in m for m in messages), "no retry met it"

    def job(job_def: dg.JobDefinition, op: str, config: dict) -> dg.ExecuteInProcessResult:
        return job_def.execute_in_process(
            run_config={"ops": {op: {"config": {"dataset": "orders", **config}}}},
            resources={"warehouse": warehouse},
            instance=instance,
            raise_on_error=False,
        )

    def statuses() -> dict[str, int]:
        query = sql.SQL("SELECT status, count(*) FROM platform.dead_letter_records GROUP BY 1")
        return dict(fetch_all(warehouse, query))

    try:
        survived(lambda: job(replay_dead_letters_job, "replay_dead_letters", {}))
        assert statuses()["resolved"] > 0
        exported = tmp_path / "letters.parquet"
        survived(
            lambda: job(export_dead_letters_job, "export_dead_letters_op", {"path": str(exported)})
        )
        assert pq.ParquetFile(exported).metadata.num_rows == statuses()["new"]
        (letter,) = fetch_all(
            warehouse,
            sql.SQL("SELECT min(id) FROM platform.dead_letter_records WHERE status = 'new'"),
        )[0]
        discard = {"dead_letter_ids": [letter], "note": "test", "author": "test"}
        survived(lambda: job(discard_dead_letters_job, "discard_dead_letters", discard))
        assert statuses()["discarded"] == 1
        survived(lambda: extract(warehouse, instance=instance, raise_on_error=False), False)
        assert fetch_all(warehouse, sql.SQL("SELECT count(*) FROM staging.customers")) == [(50,)]
    finally:
        warehouse.close()
