"""Queries the tests use to look at what actually landed in Postgres."""

import threading
import time
from collections.abc import Callable
from datetime import date

import dagster as dg
import pandas as pd
import psycopg
from psycopg import sql

from platform_assets.lib.warehouse.resource import Warehouse


def fetch_all(warehouse: Warehouse, query: sql.Composable, params: tuple = ()) -> list[tuple]:
    """Run ``query`` and return every row."""
    with warehouse.connection() as conn:
        return conn.execute(query, params).fetchall()


def table_checksum(
    warehouse: Warehouse, schema: str, table: str, column: str | None = None, value: object = None
) -> str:
    """md5 over every row of the table (or those where ``column = value``), in a stable order."""
    predicate = sql.SQL("{} = %s").format(sql.Identifier(column)) if column else sql.SQL("TRUE")
    query = sql.SQL(
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} AS t WHERE {}"
    ).format(sql.Identifier(schema, table), predicate)
    return fetch_all(warehouse, query, (value,) if column else ())[0][0]


def row_count(warehouse: Warehouse, schema: str, table: str) -> int:
    """Number of rows in ``schema.table``."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    return fetch_all(warehouse, query)[0][0]


def wait_for_lock_waiters(warehouse: Warehouse, wait_event: str, waiters: int = 1) -> bool:
    """Whether ``waiters`` sessions are seen waiting on a lock of kind ``wait_event``
    (``advisory``, ``relation``…), polled for up to ~10 s.

    Polled from its own autocommit connection: pg_stat_activity is a snapshot within a transaction.
    """
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as observer:
        for _ in range(100):
            (waiting,) = observer.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND wait_event = %s",
                (wait_event,),
            ).fetchone()
            if waiting >= waiters:
                return True
            time.sleep(0.1)
    return False


def daily_orders(day: date, rows: int, first_id: int = 0) -> pd.DataFrame:
    """``rows`` orders of ``day`` with ids from ``first_id``: a customer and an amount each."""
    return pd.DataFrame(
        {
            "order_id": pd.array(range(first_id, first_id + rows), dtype="Int64"),
            "order_date": [day] * rows,
            "customer_id": pd.array([i % 7 for i in range(rows)], dtype="Int64"),
            "amount": [float(i % 97) for i in range(rows)],
        }
    )


def run_queued_behind_a_reader(
    warehouse: Warehouse, table: sql.Composable, writes: list[Callable[[], bool]]
) -> list[bool]:
    """Run ``writes`` in threads while a reader holds ``table`` (ACCESS SHARE), so each has to
    queue for its lock on it; let the reader go once all are waiting. Their outcomes, in the order
    they finish."""
    outcomes: list[bool] = []
    threads = [threading.Thread(target=lambda w=write: outcomes.append(w())) for write in writes]
    with psycopg.connect(warehouse.conninfo()) as reader:
        reader.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
        for thread in threads:
            thread.start()
        assert wait_for_lock_waiters(warehouse, "relation", waiters=len(writes))
        reader.rollback()
        for thread in threads:
            thread.join(timeout=60)
    return outcomes


def check_evaluation(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    """The evaluation of the asset check called ``name`` in ``result``."""
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def run_checks_alone(
    assets: list,
    checks: list,
    selection: dg.AssetSelection,
    partition_key: str,
    resources: dict,
    instance: dg.DagsterInstance,
    last_partition_key: str | None = None,
) -> dg.ExecuteInProcessResult:
    """The checks in ``selection`` alone on one partition (or the range up to
    ``last_partition_key``), as the UI's "Execute checks" runs them.

    A checks-only selection has no asset to take a partitions definition from, so the partition
    goes in as the run tags the UI sets.
    """
    tags = (
        {"dagster/partition": partition_key}
        if last_partition_key is None
        else {
            "dagster/asset_partition_range_start": partition_key,
            "dagster/asset_partition_range_end": last_partition_key,
        }
    )
    job = dg.define_asset_job("checks", selection=selection)
    defs = dg.Definitions(assets=assets, asset_checks=checks, jobs=[job], resources=resources)
    return defs.resolve_job_def("checks").execute_in_process(
        tags=tags, instance=instance, raise_on_error=False
    )
