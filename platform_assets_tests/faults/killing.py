"""What the fault-injection tests share: a child process killed with its whole process group at a
chosen moment, and what a killed process must not leave behind in Postgres."""

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

from psycopg import sql

from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all

READY = "started"  # what a child script prints once its imports are done and its work begins


def started(script: str, *args: str) -> subprocess.Popen:
    """``script`` in a process group of its own, once it has printed ``READY``."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == READY  # imports done: the work begins
    return process


def timed(script: str, *args: str) -> float:
    """Seconds from the script's start of work to its exit, unkilled."""
    process = started(script, *args)
    began = time.perf_counter()
    assert process.wait(timeout=300) == 0
    return time.perf_counter() - began


class KillMoments:
    """Seeded random moments at which to SIGKILL a script's run, spread over the run's length.

    The length is first measured on an unkilled run, then lowered to the length of any run that
    finishes before its kill: a first timing taken while the machine was busy (another test
    worker, CI) would otherwise put most kills after the end, and the trials would kill nothing.
    """

    def __init__(self, script: str, *args: str, seed: str) -> None:
        self.script, self.args = script, args
        self.rng = random.Random(seed)
        self.run_s = timed(script, *args)  # no kill: how long a run takes

    def kill(self, within: tuple[float, float] = (0.0, 1.0)) -> int:
        """Run the script and SIGKILL its whole process group at a random moment ``within`` the
        given fractions of its length; return the exit code (-9 when killed, 0 when it finished
        first)."""
        after_s = self.rng.uniform(*within) * self.run_s
        process = started(self.script, *self.args)
        began = time.perf_counter()
        try:
            code = process.wait(timeout=after_s)  # it finished first
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return process.wait(timeout=120)
        self.run_s = min(self.run_s, time.perf_counter() - began)
        return code


def leftovers(warehouse: Warehouse) -> list:
    """Advisory locks, busy sessions and stray tables in ``sales`` a killed process could have
    left."""
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT 'lock', objid::text FROM pg_locks WHERE locktype = 'advisory'"
            " UNION ALL SELECT 'session', state FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND datname = current_database()"
            " AND backend_type = 'client backend' AND state <> 'idle'"
            " UNION ALL SELECT 'table', schemaname || '.' || tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            " AND tablename NOT IN ('orders') AND schemaname = 'sales'"
        ),
    )


def settled_leftovers(warehouse: Warehouse) -> list:
    """Leftovers once the server has noticed the killed client (its socket closed): polled for
    up to 5 s."""
    for _ in range(50):
        found = leftovers(warehouse)
        if not found:
            return []
        time.sleep(0.1)
    return found
