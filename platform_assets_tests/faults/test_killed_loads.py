"""Fault injection: loads SIGKILLed at seeded random moments, every trial checked against what
Postgres actually holds.

Each trial starts from a partition holding the content of one file (state A), lands a different
file, starts a real ``dg.materialize`` of the orders dataset in a child process and SIGKILLs its
whole process group at a random moment of the load. Afterwards the partition holds exactly A or
exactly the new file's content (B, known from a clean load): its rows (checksummed), its dead
letters and its accounting, with rows read = loaded + dead-lettered. No advisory lock, session or
staging table of the killed process is left, and the next run succeeds with no operator action.
Both write paths are tried: the bulk load (indexes dropped and rebuilt around the COPY) and the
plain COPY into an indexed table.

The default run keeps a short form (``KILL_TRIALS_SHORT`` kills per path); ``pytest -m faults``
runs the long form (``KILL_TRIALS_LONG`` per path). ``PLATFORM_FAULT_SEED`` replays a run's
moments; the seed and the tally are printed.
"""

import os
import signal
import textwrap
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.faults.killing import KillMoments, settled_leftovers
from platform_assets_tests.helpers import fetch_all, table_checksum
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = SAMPLE_DAYS[0]
KEY = DAY.isoformat()
ORDERS_PER_FILE = 20_000  # a write long enough for kills to land inside it
KILL_TRIALS_SHORT = 3
KILL_TRIALS_LONG = 26  # two paths: 52 kills
SEED = int(os.environ.get("PLATFORM_FAULT_SEED", "20261130"))
# bulk_load_min_rows per path: 1 makes every write a bulk load; None never.
PATHS = {"bulk-load": 1, "plain-copy": None}

LOADER = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.sources.landing_zone import LandingZone
    from platform_assets.lib.warehouse.resource import Warehouse
    from platform_assets_tests.sales.test_pipeline import ORDERS

    key, url, landing, bulk = sys.argv[1:5]
    warehouse = Warehouse(database_url=url or None)
    io_manager = PostgresIOManager(
        warehouse=warehouse, bulk_load_min_rows=int(bulk) if bulk else None
    )
    print("started", flush=True)
    dg.materialize(
        [ORDERS],
        partition_key=key,
        resources={
            "warehouse": warehouse,
            "io_manager": io_manager,
            "landing": LandingZone(directory=landing),
        },
    )
    """
)


@dataclass(frozen=True)
class PartitionState:
    """What a load of the partition leaves: its rows, dead letters and accounting."""

    rows: str
    letters: str
    accounting: tuple


def partition_state(warehouse: Warehouse) -> PartitionState:
    letters = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT md5(coalesce(string_agg(source_ref || '|' || error_message || '|'"
            " || payload::text, ',' ORDER BY source_ref, error_message), ''))"
            " FROM platform.dead_letter_records WHERE partition_key = %s"
        ),
        (KEY,),
    )[0][0]
    accounting = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered FROM platform.ingestion_accounting"
            " WHERE partition_key = %s"
        ),
        (KEY,),
    )
    (read, loaded, dead) = accounting[0]
    assert read == loaded + dead
    return PartitionState(
        table_checksum(warehouse, "sales", "orders", "order_date", DAY),
        letters,
        (read, loaded, dead),
    )


def load_in_process(resources: dict, instance: dg.DagsterInstance, bulk: int | None) -> None:
    io_manager = PostgresIOManager(warehouse=resources["warehouse"], bulk_load_min_rows=bulk)
    result = dg.materialize(
        [ORDERS],
        partition_key=KEY,
        resources={**resources, "io_manager": io_manager},
        instance=instance,
    )
    assert result.success


def run_kill_trials(
    kills: int, bulk: int | None, resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> dict[str, int]:
    """``kills`` killed loads on the path ``bulk`` selects; the tally of what each left."""
    warehouse: Warehouse = resources["warehouse"]
    directory = tmp_path / "orders"
    old = write_day(directory, DAY, ORDERS_PER_FILE, seed=1, malformed_share=0.03).read_bytes()
    new = write_day(directory, DAY, ORDERS_PER_FILE, seed=2, malformed_share=0.03).read_bytes()
    path = directory / next(p.name for p in directory.iterdir())
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    def land(content: bytes) -> None:
        path.write_bytes(content)

    land(new)
    load_in_process(resources, instance, bulk)
    state_new = partition_state(warehouse)
    land(old)
    load_in_process(resources, instance, bulk)
    state_old = partition_state(warehouse)
    assert state_old != state_new
    land(new)
    loader_args = (KEY, warehouse.database_url or "", str(tmp_path), str(bulk or ""))
    moments = KillMoments(LOADER, *loader_args, seed=f"{SEED}:{bulk}")
    assert partition_state(warehouse) == state_new

    tally = {"killed, old content": 0, "killed, new content": 0, "finished first": 0}
    attempts = 0
    while tally["killed, old content"] + tally["killed, new content"] < kills:
        attempts += 1
        assert attempts <= 3 * kills, f"the loads kept finishing first: {tally}"
        land(old)
        load_in_process(resources, instance, bulk)
        assert partition_state(warehouse) == state_old
        land(new)
        code = moments.kill()
        after = partition_state(warehouse)
        assert after in (state_old, state_new), "a partition neither old nor new"
        assert settled_leftovers(warehouse) == []
        if code == 0:
            tally["finished first"] += 1
            assert after == state_new
        else:
            assert code == -signal.SIGKILL
            tally["killed, old content" if after == state_old else "killed, new content"] += 1
        load_in_process(resources, instance, bulk)  # the next run: no operator action needed
        assert partition_state(warehouse) == state_new
    load = f"bulk_load_min_rows={bulk}, load {moments.run_s:.1f} s"
    print(f"kill trials (seed {SEED}, {load}): {tally}")
    return tally


@pytest.mark.parametrize("bulk", PATHS.values(), ids=PATHS.keys())
def test_killed_loads_leave_the_old_or_the_new_partition_short(
    bulk: int | None, resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    tally = run_kill_trials(KILL_TRIALS_SHORT, bulk, resources, instance, tmp_path)
    assert sum(tally.values()) >= KILL_TRIALS_SHORT


@pytest.mark.faults
@pytest.mark.parametrize("bulk", PATHS.values(), ids=PATHS.keys())
def test_killed_loads_leave_the_old_or_the_new_partition_long(
    bulk: int | None, resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    tally = run_kill_trials(KILL_TRIALS_LONG, bulk, resources, instance, tmp_path)
    assert tally["killed, old content"] + tally["killed, new content"] == KILL_TRIALS_LONG
