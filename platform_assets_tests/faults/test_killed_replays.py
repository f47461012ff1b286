"""Fault injection: dead-letter replays SIGKILLed at seeded random moments.

A day of 20,000 orders is loaded under a stricter spec than the shipped one (no `partner`
channel), so about a quarter of its rows become dead letters that the shipped spec accepts. A
replay of that day, in a child process, is SIGKILLed with its whole process group at a random
moment. Afterwards the partition is exactly as before the replay (every letter queued, no replayed
row) or exactly as after it (the letters that pass resolved, their rows loaded, the accounting
moved from dead-lettered to loaded, the rest queued with one more attempt): rows checksummed,
letters and accounting compared. No advisory lock, session or stray table is left, and the next
replay finishes the work with no operator action (counting one more attempt for each letter that
still fails, if the killed replay had committed).

The default run keeps ``KILL_TRIALS_SHORT`` kills; ``pytest -m faults`` runs ``KILL_TRIALS_LONG``.
``PLATFORM_FAULT_SEED`` replays a run's moments.
"""

import hashlib
import signal
import textwrap
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.replay import replay_dead_letters_job
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.faults.killing import KillMoments, settled_leftovers
from platform_assets_tests.faults.test_killed_loads import DAY, KEY, ORDERS_PER_FILE, SEED
from platform_assets_tests.helpers import fetch_all, table_checksum

KILL_TRIALS_SHORT = 3
KILL_TRIALS_LONG = 26

REPLAYER = textwrap.dedent(
    """
    import sys
    from platform_assets.defs.datasets.replay import replay_dead_letters_job
    from platform_assets.lib.warehouse.resource import Warehouse

    key, url = sys.argv[1:3]
    config = {"dataset": "orders", "partitions": [key]}
    print("started", flush=True)
    result = replay_dead_letters_job.execute_in_process(
        run_config={"ops": {"replay_dead_letters": {"config": config}}},
        resources={"warehouse": Warehouse(database_url=url or None)},
    )
    sys.exit(0 if result.success else 1)
    """
)


def without_partner_channel(spec: DatasetSpec) -> DatasetSpec:
    """The orders spec refusing the ``partner`` channel: its rows become replayable letters."""
    columns = [
        column.model_copy(update={"enum": ["web", "mobile", "store"]})
        if column.name == "channel"
        else column
        for column in spec.columns
    ]
    return spec.model_copy(update={"columns": columns, "fail_dead_letter_ratio": 1.0})


STRICT_ORDERS = build_dataset_asset(without_partner_channel(SPECS_BY_NAME["orders"]))


@dataclass(frozen=True)
class ReplayState:
    """The partition's rows, its letters (reference and status), their attempts, and its
    accounting."""

    rows: str
    letters: str
    attempts: str
    accounting: tuple

    def settled_like(self, other: "ReplayState") -> bool:
        """The same rows, letter statuses and accounting: attempts aside (a replay run again
        counts one more attempt for each letter still failing)."""
        return (self.rows, self.letters, self.accounting) == (
            other.rows,
            other.letters,
            other.accounting,
        )


def replay_state(warehouse: Warehouse) -> ReplayState:
    letters = sorted(
        fetch_all(
            warehouse,
            sql.SQL(
                "SELECT source_ref, status, attempt_count FROM platform.dead_letter_records"
                " WHERE partition_key = %s"
            ),
            (KEY,),
        )
    )
    resolved = sum(status == "resolved" for _, status, _ in letters)

    def digest(values: list) -> str:
        return hashlib.md5(repr(values).encode(), usedforsecurity=False).hexdigest()

    (read, loaded, dead, discarded) = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered, rows_discarded"
            " FROM platform.ingestion_accounting WHERE partition_key = %s"
        ),
        (KEY,),
    )[0]
    assert read == loaded + dead + discarded
    return ReplayState(
        table_checksum(warehouse, "sales", "orders", "order_date", DAY),
        f"{digest([letter[:2] for letter in letters])} ({resolved} resolved)",
        digest(letters),
        (read, loaded, dead, discarded),
    )


def reset(resources: dict, instance: dg.DagsterInstance) -> None:
    """The day as the strict load leaves it: every letter queued, none replayed."""
    with resources["warehouse"].connection() as conn:
        if conn.execute("SELECT to_regclass('platform.dead_letter_records')").fetchone()[0]:
            conn.execute(
                "DELETE FROM platform.dead_letter_records WHERE partition_key = %s", (KEY,)
            )
    loaded = dg.materialize(
        [STRICT_ORDERS], partition_key=KEY, resources=resources, instance=instance
    )
    assert loaded.success


def replay_in_process(warehouse: Warehouse, instance: dg.DagsterInstance) -> None:
    replayed = replay_dead_letters_job.execute_in_process(
        run_config={
            "ops": {"replay_dead_letters": {"config": {"dataset": "orders", "partitions": [KEY]}}}
        },
        resources={"warehouse": warehouse},
        instance=instance,
    )
    assert replayed.success


def run_replay_kill_trials(
    kills: int, resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> dict[str, int]:
    """``kills`` killed replays; the tally of what each left."""
    warehouse: Warehouse = resources["warehouse"]
    write_day(tmp_path / "orders", DAY, ORDERS_PER_FILE, seed=5, malformed_share=0.03)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    reset(resources, instance)
    before = replay_state(warehouse)
    replay_in_process(warehouse, instance)
    after = replay_state(warehouse)
    assert before.rows != after.rows and before.accounting[1] < after.accounting[1]
    reset(resources, instance)
    args = (KEY, warehouse.database_url or "")
    moments = KillMoments(REPLAYER, *args, seed=f"{SEED}:replay")
    assert replay_state(warehouse) == after

    tally = {"killed, before": 0, "killed, after": 0, "finished first": 0}
    attempts = 0
    while tally["killed, before"] + tally["killed, after"] < kills:
        attempts += 1
        assert attempts <= 3 * kills, f"the replays kept finishing first: {tally}"
        reset(resources, instance)
        assert replay_state(warehouse) == before
        code = moments.kill()
        state = replay_state(warehouse)
        assert state in (before, after), "a replay left the partition half done"
        assert settled_leftovers(warehouse) == []
        if code == 0:
            tally["finished first"] += 1
            assert state == after
        else:
            assert code == -signal.SIGKILL
            tally["killed, before" if state == before else "killed, after"] += 1
        replay_in_process(warehouse, instance)  # the next replay: no operator action needed
        assert replay_state(warehouse).settled_like(after)
    print(f"replay kill trials (seed {SEED}, replay {moments.run_s:.1f} s): {tally}")
    return tally


def test_killed_replays_leave_the_partition_before_or_after_short(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    tally = run_replay_kill_trials(KILL_TRIALS_SHORT, resources, instance, tmp_path)
    assert tally["killed, before"] + tally["killed, after"] == KILL_TRIALS_SHORT


@pytest.mark.faults
def test_killed_replays_leave_the_partition_before_or_after_long(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    tally = run_replay_kill_trials(KILL_TRIALS_LONG, resources, instance, tmp_path)
    assert tally["killed, before"] + tally["killed, after"] == KILL_TRIALS_LONG
