"""Fault injection: incremental table extracts SIGKILLed at seeded random moments.

``crm.customers`` holds 60,000 rows; each trial changes every one of them and starts the shipped
``customers`` extract (chunks of 5,000) in a child process, SIGKILLed with its whole process group
at a random moment. Afterwards the staging table and the checkpoint are exactly as before the
extract, or exactly as a complete extract leaves them: never some chunks without their mark, never
a mark past rows not stored. The next extract, with no operator action, takes every change (none
skipped, none twice) and ``source_rows_accounted`` passes.

The default run keeps ``KILL_TRIALS_SHORT`` kills; ``pytest -m faults`` runs ``KILL_TRIALS_LONG``.
"""

import signal
import textwrap

import pytest
from psycopg import sql

from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.test_table_source import (
    checkpoint,
    checks_passed,
    extract,
    source,  # noqa: F401 (the fixture)
    with_source,
)
from platform_assets_tests.faults.killing import KillMoments, settled_leftovers
from platform_assets_tests.faults.test_killed_loads import SEED
from platform_assets_tests.helpers import fetch_all

ROWS = 60_000
CHUNK_ROWS = 5_000
KILL_TRIALS_SHORT = 3
KILL_TRIALS_LONG = 13
SPEC = with_source(chunk_rows=CHUNK_ROWS)

EXTRACTOR = textwrap.dedent(
    f"""
    import sys
    import dagster as dg
    from platform_assets.defs.datasets.table_extracts import build_table_extract_asset
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.warehouse.resource import Warehouse
    from platform_assets_tests.datasets.test_table_source import with_source

    warehouse = Warehouse(database_url=sys.argv[1] or None)
    asset = build_table_extract_asset(with_source(chunk_rows={CHUNK_ROWS}))
    print("started", flush=True)
    dg.materialize(
        [asset],
        resources={{"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)}},
    )
    """
)


def staged(warehouse: Warehouse) -> tuple[str, int, dict | None]:
    """The staging table's content (checksummed), its row count, and the committed mark."""
    rows = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT md5(coalesce(string_agg(c::text, ',' ORDER BY c.id), '')), count(*)"
            " FROM staging.customers c"
        ),
    )[0]
    return rows[0], rows[1], checkpoint(warehouse)


def change_every_customer(warehouse: Warehouse, version: int) -> None:
    with warehouse.connection() as conn:
        conn.execute(
            "UPDATE crm.customers SET name = 'customer ' || id || ' v' || %s,"
            " updated_at = now() - interval '10 seconds'",
            (version,),
        )


def run_extract_kill_trials(kills: int, warehouse: Warehouse) -> dict[str, int]:
    with warehouse.connection() as conn:
        conn.execute(
            "INSERT INTO crm.customers (id, name, email, updated_at)"
            " SELECT i, 'customer ' || i, 'c' || i || '@example.com', now() - interval '1 hour'"
            " FROM generate_series(51, %s) i",
            (ROWS,),
        )
    assert extract(warehouse, SPEC).success
    change_every_customer(warehouse, 1)
    moments = KillMoments(EXTRACTOR, warehouse.database_url or "", seed=f"{SEED}:extract")
    assert staged(warehouse)[1] == ROWS

    tally = {"killed, before": 0, "killed, after": 0, "finished first": 0}
    version = 1
    while tally["killed, before"] + tally["killed, after"] < kills:
        version += 1
        assert version <= 3 * kills + 1, f"the extracts kept finishing first: {tally}"
        before = staged(warehouse)
        change_every_customer(warehouse, version)
        code = moments.kill()
        left = staged(warehouse)
        assert settled_leftovers(warehouse) == []
        resumed = extract(warehouse, SPEC)  # the next run: no operator action needed
        assert resumed.success and all(checks_passed(resumed).values())
        after = staged(warehouse)
        assert after[1] == ROWS and after != before
        assert left in (before, after), "an extract left chunks without their mark, or a mark"
        if code == 0:
            tally["finished first"] += 1
        else:
            assert code == -signal.SIGKILL
            tally["killed, before" if left == before else "killed, after"] += 1
        names = fetch_all(warehouse, sql.SQL("SELECT DISTINCT name ~ ' v' FROM staging.customers"))
        assert names == [(True,)]
    print(f"extract kill trials (seed {SEED}, extract {moments.run_s:.1f} s): {tally}")
    return tally


def test_killed_extracts_leave_the_checkpoint_and_rows_together_short(
    source: Warehouse,  # noqa: F811
) -> None:
    tally = run_extract_kill_trials(KILL_TRIALS_SHORT, source)
    assert tally["killed, before"] + tally["killed, after"] == KILL_TRIALS_SHORT


@pytest.mark.faults
def test_killed_extracts_leave_the_checkpoint_and_rows_together_long(
    source: Warehouse,  # noqa: F811
) -> None:
    tally = run_extract_kill_trials(KILL_TRIALS_LONG, source)
    assert tally["killed, before"] + tally["killed, after"] == KILL_TRIALS_LONG
