"""Eight runs at once, of the same day and of overlapping ranges, in eight processes, end exactly
as one clean run of the same days ends: the same rows, dead letters and accounting.

Every writer takes the advisory locks of its partitions in one sorted order, so overlapping ranges
queue instead of deadlocking, and each partition is replaced whole, never half by one run and half
by another.
"""

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from psycopg import sql

from platform_assets.lib import settings
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT
from platform_assets_tests.helpers import fetch_all, table_checksum

FIRST = date(2026, 7, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(4)]
# (first day, last day) of each concurrent run: the same day four times, and overlapping ranges.
RUNS = [(0, 0), (0, 0), (0, 0), (0, 0), (0, 3), (1, 2), (2, 3), (0, 1)]
RUN = """
import sys
import dagster as dg
from platform_assets.defs.datasets.assets import dataset_assets
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse

first, last = sys.argv[1], sys.argv[2]
warehouse = Warehouse()
result = dg.materialize(
    [next(a for a in dataset_assets if a.key == dg.AssetKey(["sales", "orders"]))],
    tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    resources={
        "warehouse": warehouse,
        "io_manager": PostgresIOManager(warehouse=warehouse),
        "landing": LandingZone(directory=sys.argv[3]),
    },
)
sys.exit(0 if result.success else 1)
"""


def stored(warehouse: Warehouse) -> dict[str, object]:
    """Everything the runs wrote, in a form two states can be compared by."""
    return {
        "orders": table_checksum(warehouse, "sales", "orders"),
        "dead_letters": fetch_all(
            warehouse,
            sql.SQL(
                "SELECT partition_key, source_ref, error_message, status, attempt_count"
                " FROM platform.dead_letter_records ORDER BY 1, 2, 3"
            ),
        ),
        "accounting": fetch_all(
            warehouse,
            sql.SQL(
                "SELECT partition_key, rows_read, rows_loaded, rows_dead_lettered, rows_discarded"
                " FROM platform.ingestion_accounting ORDER BY 1"
            ),
        ),
        "file_lines": fetch_all(
            warehouse,
            sql.SQL(
                "SELECT partition_key, source_file, data_lines, lines_loaded, lines_dead_lettered"
                " FROM platform.ingestion_file_lines ORDER BY 1, 2"
            ),
        ),
    }


def run_at_once(landing: Path, runs: list[tuple[int, int]]) -> list[int]:
    """Start every run in its own process at once; their exit codes."""
    env = {**os.environ, settings.LANDING_DIR_VAR: str(landing)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUN, DAYS[a].isoformat(), DAYS[b].isoformat(), str(landing)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for a, b in runs
    ]
    return [process.wait(timeout=600) for process in processes]


def test_eight_concurrent_runs_end_as_one_clean_run(clean_warehouse: Warehouse, tmp_path: Path):
    for n, day in enumerate(DAYS):
        write_day(tmp_path / "orders", day, orders=1_500, seed=70 + n, malformed_share=0.03)
    assert run_at_once(tmp_path, [(0, 3)]) == [0]
    clean = stored(clean_warehouse)
    assert [row[0] for row in clean["accounting"]] == [day.isoformat() for day in DAYS]

    with clean_warehouse.connection() as conn:  # from nothing again: the table is created at once
        for schema in ("sales", "platform"):
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    assert run_at_once(tmp_path, RUNS) == [0] * len(RUNS)
    assert stored(clean_warehouse) == clean
    locks = fetch_all(
        clean_warehouse, sql.SQL("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    )
    tables = fetch_all(
        clean_warehouse, sql.SQL("SELECT tablename FROM pg_tables WHERE schemaname = 'sales'")
    )
    assert locks == [(0,)] and tables == [("orders",)]  # no lock held, no staging table left
