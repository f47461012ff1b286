"""The incremental customers extract: exactly-once by a checkpoint committed with its rows."""

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.crm.assets import SOURCE, customers
from platform_assets.lib.dead_letters.side_writes import read_checkpoint
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all

NOW = {"ops": {"staging__customers": {"config": {"safety_lag_s": 0}}}}


@pytest.fixture
def source(clean_warehouse: Warehouse) -> Iterator[Warehouse]:
    """crm.customers with 50 rows last changed an hour ago."""
    with clean_warehouse.connection() as conn:
        for schema in ("crm", "staging"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute("CREATE SCHEMA crm")
        conn.execute(
            "CREATE TABLE crm.customers (id bigint PRIMARY KEY, name text NOT NULL, email text,"
            " updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO crm.customers SELECT i, 'customer ' || i, i || '@example.com',"
            " now() - interval '1 hour' + i * interval '1 second' FROM generate_series(1, 50) i"
        )
    yield clean_warehouse


def extract(warehouse: Warehouse, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [customers],
        resources={"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)},
        run_config=NOW,
        **kwargs,
    )


def figures(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    return {k: metadata[k].value for k in ("rows_read", "rows_inserted", "rows_updated")}


def checkpoint(warehouse: Warehouse) -> dict | None:
    with warehouse.connection() as conn:
        return read_checkpoint(conn, SOURCE)


def test_extracts_everything_then_only_what_changed(source: Warehouse) -> None:
    assert figures(extract(source)) == {"rows_read": 50, "rows_inserted": 50, "rows_updated": 0}
    assert checkpoint(source)["key"] == 50
    assert figures(extract(source)) == {"rows_read": 0, "rows_inserted": 0, "rows_updated": 0}

    with source.connection() as conn:
        conn.execute(
            "UPDATE crm.customers SET name = name || ' (moved)', updated_at = now()"
            " WHERE id IN (3, 17, 41)"
        )
    assert figures(extract(source)) == {"rows_read": 3, "rows_inserted": 0, "rows_updated": 3}
    moved = fetch_all(
        source, sql.SQL("SELECT id FROM staging.customers WHERE name LIKE '%%(moved)' ORDER BY id")
    )
    assert moved == [(3,), (17,), (41,)]
    assert checkpoint(source)["key"] == 41


def test_a_failed_write_keeps_the_checkpoint_so_nothing_is_skipped(source: Warehouse) -> None:
    assert extract(source).success
    before = checkpoint(source)
    with source.connection() as conn:
        conn.execute(
            "ALTER TABLE staging.customers ADD CONSTRAINT no_poison CHECK (name <> 'poison')"
        )
        conn.execute("UPDATE crm.customers SET name = 'poison', updated_at = now() WHERE id = 7")

    failed = extract(source, raise_on_error=False)

    assert not failed.success
    assert checkpoint(source) == before
    with source.connection() as conn:
        conn.execute("ALTER TABLE staging.customers DROP CONSTRAINT no_poison")
    retried = extract(source)
    assert figures(retried) == {"rows_read": 1, "rows_inserted": 0, "rows_updated": 1}
    assert fetch_all(source, sql.SQL("SELECT name FROM staging.customers WHERE id = 7")) == [
        ("poison",)
    ]


def test_rows_younger_than_the_safety_lag_wait_for_the_next_extract(source: Warehouse) -> None:
    with source.connection() as conn:
        conn.execute("UPDATE crm.customers SET updated_at = now() WHERE id = 50")
    result = dg.materialize(
        [customers],
        resources={"warehouse": source, "io_manager": PostgresIOManager(warehouse=source)},
        run_config={"ops": {"staging__customers": {"config": {"safety_lag_s": 600}}}},
    )
    assert figures(result)["rows_read"] == 49
    assert checkpoint(source)["key"] == 49


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import dagster as dg
    import platform_assets.defs.crm.assets as crm
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.warehouse.resource import Warehouse

    extract = crm.changed_row_chunks

    def dies_after_two_chunks(*args):
        for number, chunk in enumerate(extract(*args)):
            if number == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback from here
            yield chunk

    crm.changed_row_chunks = dies_after_two_chunks
    warehouse = Warehouse(database_url=sys.argv[1] or None)
    config = {"safety_lag_s": 0, "chunk_rows": 10}
    dg.materialize(
        [crm.customers],
        resources={"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)},
        run_config={"ops": {"staging__customers": {"config": config}}},
    )
    """
)


def test_a_process_killed_between_chunks_leaves_the_checkpoint(source: Warehouse) -> None:
    assert extract(source).success
    before = checkpoint(source)
    staged = fetch_all(source, sql.SQL("SELECT * FROM staging.customers ORDER BY id"))
    with source.connection() as conn:
        conn.execute("UPDATE crm.customers SET name = name || ' v2', updated_at = now()")

    killed = subprocess.run(
        [sys.executable, "-c", KILLER, source.database_url or ""],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -9, killed.stderr
    assert checkpoint(source) == before  # the mark did not move past rows never committed
    assert fetch_all(source, sql.SQL("SELECT * FROM staging.customers ORDER BY id")) == staged
    resumed = extract(source)  # the next run takes every changed row, nothing skipped
    assert figures(resumed) == {"rows_read": 50, "rows_inserted": 0, "rows_updated": 50}
    assert checkpoint(source)["key"] == 50


def test_chunks_come_from_one_snapshot_and_the_last_mark_commits(source: Warehouse) -> None:
    result = dg.materialize(
        [customers],
        resources={"warehouse": source, "io_manager": PostgresIOManager(warehouse=source)},
        run_config={
            "ops": {"staging__customers": {"config": {"safety_lag_s": 0, "chunk_rows": 7}}}
        },
    )

    assert figures(result) == {"rows_read": 50, "rows_inserted": 50, "rows_updated": 0}
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["high_water"].value == checkpoint(source)
    assert checkpoint(source)["key"] == 50
