"""IO-manager benchmark: every figure is a ratio against a baseline measured in the same run.

    python benchmarks/io_manager.py [--rows 1000000]

Uses PLATFORM_DATABASE_URL when set, otherwise an embedded server in a temporary directory. Our
side always runs through ``dg.materialize``. The baselines are bare library calls, so the ratios
against them (``*_vs_to_sql``, ``*_vs_adbc``, ``*_vs_dict_batches``) time the IO manager's own
``handle_output`` inside that real run: a user writing the baseline by hand inside an asset pays
the same run around it. The same ratios over the whole run are printed too (``*_run_*``). The
backfill ratio is about runs, so both of its sides are whole runs. The replace is measured twice:
into a table holding only the day (a bulk load, see ``bulk_load``), and rerun once the table holds
two more days (``*_larger_table_*``: the row-by-row path, against ``to_sql`` in the same state),
and so in a table with ``native_partitions`` (``replace_native_larger_table_*``: a swap).
The steady state is measured on tables that already hold ``--large-rows`` rows:
``upsert_into_large_vs_hand_merge`` (an upsert of a tenth of them, 25 % new, 50 % unchanged,
25 % changed, against psycopg's ``COPY`` + ``ON CONFLICT`` as written by hand;
``upsert_into_large_vs_adbc_merge`` against the same with ADBC's binary COPY) and
``read_day_from_large_vs_read_sql`` (one day of a seven-day table, against ``pd.read_sql``).
The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import numpy as np
import pandas as pd
import psutil
import psycopg
import pyarrow as pa
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import insert
from support import benchmark_warehouse

from platform_assets.lib import settings
from platform_assets.lib.frames import arrow_to_frame
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.io_manager.read_slice import read_slice
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice, TimeRange
from platform_assets.lib.warehouse.resource import Warehouse

DAY = date(2026, 11, 1)
daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
ORDERS_METADATA = {"partition_column": "order_date", "primary_key": ["order_id"]}
NATIVE_METADATA = {
    "partition_column": "order_date",
    "primary_key": ["order_id", "order_date"],
    "native_partitions": True,
}


def orders_frame(rows: int, day: date = DAY, first_id: int = 0, seed: int = 1) -> pd.DataFrame:
    """A 10-column orders frame of ``rows`` rows, all on ``day``."""
    rng = np.random.default_rng(seed)
    midnight = pd.Timestamp(day, tz="UTC")
    return pd.DataFrame(
        {
            "order_id": np.arange(first_id, first_id + rows, dtype="int64"),
            "customer_id": rng.integers(1, 50_000, rows),
            "order_date": [day] * rows,
            "ordered_at": midnight + pd.to_timedelta(rng.integers(0, 86_400, rows), unit="s"),
            "status": pd.Series(rng.choice(["placed", "shipped", "delivered"], rows), dtype="str"),
            "currency": pd.Series(rng.choice(["EUR", "USD", "GBP"], rows), dtype="str"),
            "quantity": pd.array(rng.integers(1, 10, rows), dtype="Int64"),
            "unit_price": rng.random(rows) * 100,
            "amount": rng.random(rows) * 1000,
            "is_gift": rng.random(rows) < 0.1,
        }
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def settle(warehouse: Warehouse) -> None:
    """VACUUM ANALYZE, so no timed step pays for the previous one's bulk load (hint bits on fresh
    rows, a concurrent autovacuum): steady-state tables for both sides. No CHECKPOINT: right after
    one, every first page write logs a full-page image, which is the worst case, not the steady
    state (the embedded server checkpoints every 30 minutes)."""
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def median_of(runs: int, prepare: Callable[[], object], action: Callable[[], object]) -> float:
    """Median time of ``action`` over ``runs`` runs, each after ``prepare``."""
    times = []
    for _ in range(runs):
        prepare()
        times.append(timed(action))
    return statistics.median(times)


WRITE_SECONDS: list[float] = []  # each handle_output's wall time, appended as runs finish


class TimedIOManager(PostgresIOManager):
    """The platform's IO manager, recording how long each of its writes takes."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        started = time.perf_counter()
        super().handle_output(context, obj)
        WRITE_SECONDS.append(time.perf_counter() - started)


def materialize_frame(
    warehouse: Warehouse, name: str, frame: pd.DataFrame, metadata: dict, partition: str | None
) -> float:
    """Materialise ``frame`` as asset ``bench/<name>``; return the IO manager's write time."""

    @dg.asset(key=["bench", name], partitions_def=daily if partition else None, metadata=metadata)
    def _asset() -> pd.DataFrame:
        return frame

    result = dg.materialize(
        [_asset],
        partition_key=partition,
        resources={"io_manager": TimedIOManager(warehouse=warehouse)},
    )
    assert result.success
    return WRITE_SECONDS[-1]


def timed_run(action: Callable[[], float]) -> tuple[float, float]:
    """(the IO manager's write time, the whole run's time) of one ``materialize_frame``."""
    started = time.perf_counter()
    write = action()
    return write, time.perf_counter() - started


def run_sql(warehouse: Warehouse, statement: str) -> object:
    with warehouse.connection() as conn:
        cursor = conn.execute(statement)
        return cursor.fetchone() if cursor.description else None


def engine_for(warehouse: Warehouse) -> sa.Engine:
    conninfo = warehouse.conninfo()
    return sa.create_engine(
        "postgresql+psycopg://", creator=lambda: __import__("psycopg").connect(conninfo)
    )


def delete_and_to_sql(engine: sa.Engine, frame: pd.DataFrame) -> None:
    """The baseline replace: DELETE the day from ``bench.orders_to_sql``, then ``to_sql``."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM bench.orders_to_sql WHERE order_date = :d"), {"d": DAY})
        frame.to_sql("orders_to_sql", conn, schema="bench", if_exists="append", index=False)


def adbc_append(warehouse: Warehouse, table: str, frame: pd.DataFrame) -> None:
    """The other baseline: a raw ADBC ingest of ``frame`` into ``bench.<table>``."""
    with adbc.connect(warehouse.conninfo()) as conn, conn.cursor() as cursor:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        cursor.adbc_ingest(table, arrow, mode="append", db_schema_name="bench")
        conn.commit()


def bench_replace(warehouse: Warehouse, engine: sa.Engine, rows: int) -> dict[str, float]:
    """Replace a day of ``rows`` rows in a table holding 10 rows of that day; the baselines load
    the same rows into an empty table with the same indexes. Leaves both tables holding the day."""
    frame = orders_frame(rows)
    materialize_frame(warehouse, "orders", frame.head(10), ORDERS_METADATA, DAY.isoformat())
    settle(warehouse)
    ours, ours_run = timed_run(
        lambda: materialize_frame(warehouse, "orders", frame, ORDERS_METADATA, DAY.isoformat())
    )
    brin_metadata = {**ORDERS_METADATA, "partition_index": "brin"}
    materialize_frame(warehouse, "orders_brin", frame.head(10), brin_metadata, DAY.isoformat())
    settle(warehouse)
    brin, _ = timed_run(
        lambda: materialize_frame(warehouse, "orders_brin", frame, brin_metadata, DAY.isoformat())
    )

    run_sql(warehouse, "DROP TABLE IF EXISTS bench.orders_to_sql")
    run_sql(warehouse, "CREATE TABLE bench.orders_to_sql (LIKE bench.orders INCLUDING ALL)")
    run_sql(warehouse, "ALTER TABLE bench.orders_to_sql DROP COLUMN _row_hash")
    settle(warehouse)
    to_sql = timed(lambda: delete_and_to_sql(engine, frame))
    run_sql(warehouse, "TRUNCATE bench.orders_to_sql")
    settle(warehouse)
    adbc_time = timed(lambda: adbc_append(warehouse, "orders_to_sql", frame))
    return {
        "replace_s": ours,
        "replace_run_s": ours_run,
        "replace_brin_s": brin,
        "to_sql_s": to_sql,
        "adbc_ingest_s": adbc_time,
    }


def bench_replace_in_larger_table(
    warehouse: Warehouse, engine: sa.Engine, rows: int
) -> dict[str, float]:
    """Rerun the day once each table (left by ``bench_replace``) also holds two other days of as
    many rows. The write no longer outweighs the table, so no bulk load (see ``bulk_load``): both
    sides delete the day's rows and maintain the indexes row by row. The same three days in a
    natively partitioned table (see ``native_partitions``) are rerun by a swap instead."""
    frame = orders_frame(rows)
    for offset in (1, 2):
        day = DAY - timedelta(days=offset)
        other = orders_frame(rows, day, first_id=offset * 10**8, seed=offset + 10)
        materialize_frame(warehouse, "orders", other, ORDERS_METADATA, day.isoformat())
        adbc_append(warehouse, "orders_to_sql", other)
        materialize_frame(warehouse, "orders_native", other, NATIVE_METADATA, day.isoformat())
    materialize_frame(warehouse, "orders_native", frame, NATIVE_METADATA, DAY.isoformat())
    settle(warehouse)
    ours, ours_run = timed_run(
        lambda: materialize_frame(warehouse, "orders", frame, ORDERS_METADATA, DAY.isoformat())
    )
    settle(warehouse)
    native, native_run = timed_run(
        lambda: materialize_frame(
            warehouse, "orders_native", frame, NATIVE_METADATA, DAY.isoformat()
        )
    )
    settle(warehouse)
    return {
        "replace_larger_table_s": ours,
        "replace_larger_table_run_s": ours_run,
        "replace_native_larger_table_s": native,
        "replace_native_larger_table_run_s": native_run,
        "to_sql_larger_table_s": timed(lambda: delete_and_to_sql(engine, frame)),
    }


def upsert_batch(base: pd.DataFrame) -> pd.DataFrame:
    """A batch of a tenth of ``base``'s size: 40 % unchanged, 10 % changed, 50 % new. Every 7th
    new row has no status: missing text must stay NULL, never 'NaN'."""
    rows = len(base)
    size = rows // 10
    existing = base.iloc[: size // 2]
    unchanged = existing.iloc[: size * 4 // 10]
    changed = existing.iloc[size * 4 // 10 :].copy()
    changed["status"] = "returned"
    changed["amount"] = changed["amount"] + 1
    new = orders_frame(size // 2, first_id=rows, seed=3)
    new["status"] = new["status"].where(new.index % 7 != 0)
    return pd.concat([unchanged, changed, new], ignore_index=True)


def bench_upsert(warehouse: Warehouse, engine: sa.Engine, rows: int) -> dict[str, float]:
    """Upsert ``rows // 10`` orders (50 % new, 40 % unchanged, 10 % changed) into ``rows``: the
    issue's 10-column orders frame, keyed by ``order_id``, on both sides."""
    base = orders_frame(rows)
    batch = upsert_batch(base)
    changed = int((batch["status"] == "returned").sum())
    metadata = {"write_mode": "upsert", "primary_key": ["order_id"]}

    def reset(table: str) -> None:
        run_sql(warehouse, f"DROP TABLE IF EXISTS bench.{table}")
        materialize_frame(warehouse, table, base, {**metadata, "write_mode": "replace_table"}, None)
        settle(warehouse)

    runs = []
    for _ in range(3):
        reset("orders_upsert")
        runs.append(
            timed_run(lambda: materialize_frame(warehouse, "orders_upsert", batch, metadata, None))
        )
    ours, ours_run = (statistics.median(times) for times in zip(*runs, strict=True))
    reset("orders_upsert")
    run_sql(warehouse, "SELECT pg_stat_force_next_flush()")
    updates_before = updated_rows(warehouse, "orders_upsert")
    materialize_frame(warehouse, "orders_upsert", batch, metadata, None)
    run_sql(warehouse, "SELECT pg_stat_force_next_flush()")
    time.sleep(0.5)
    updates = updated_rows(warehouse, "orders_upsert") - updates_before

    reset("orders_dicts")
    table = sa.Table("orders_dicts", sa.MetaData(), schema="bench", autoload_with=engine)
    update_columns = [c for c in base.columns if c != "order_id"]

    def dict_batches() -> None:
        """The seed's upsert: SQLAlchemy ``on_conflict_do_update`` over batches of 1,000 dicts."""
        records = batch.to_dict("records")
        with engine.begin() as conn:
            for start in range(0, len(records), 1000):
                statement = insert(table).values(records[start : start + 1000])
                statement = statement.on_conflict_do_update(
                    index_elements=["order_id"],
                    set_={c: statement.excluded[c] for c in update_columns},
                )
                conn.execute(statement)

    baseline = timed(dict_batches)
    nan_text = "SELECT count(*) FROM bench.{} WHERE status = 'NaN'"
    return {
        "upsert_s": ours,
        "upsert_run_s": ours_run,
        "dict_batches_s": baseline,
        "unchanged_rows_updated": updates - changed,
        "dict_batches_nan_strings": run_sql(warehouse, nan_text.format("orders_dicts"))[0],
        "our_nan_strings": run_sql(warehouse, nan_text.format("orders_upsert"))[0],
    }


def updated_rows(warehouse: Warehouse, table: str) -> int:
    with warehouse.connection() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT n_tup_upd FROM pg_stat_user_tables WHERE schemaname = 'bench' AND relname = %s",
            (table,),
        ).fetchone()[0]


def bench_read(warehouse: Warehouse, engine: sa.Engine, rows: int) -> dict[str, float]:
    day = DAY + timedelta(days=1)
    materialize_frame(
        warehouse,
        "orders",
        orders_frame(rows, day, first_id=10**9),
        ORDERS_METADATA,
        day.isoformat(),
    )
    settle(warehouse)
    read_s, read_sql_s = read_day_both_ways(warehouse, engine, "orders", day, rows)
    return {"read_s": read_s, "read_sql_s": read_sql_s}


def read_day_both_ways(
    warehouse: Warehouse, engine: sa.Engine, table: str, day: date, rows: int
) -> tuple[float, float]:
    """The best of three reads of ``day`` from ``bench.<table>``: through ``read_slice`` (ours),
    and through ``pd.read_sql``; both must return the day's ``rows`` rows."""
    midnight = pd.Timestamp(day, tz="UTC").to_pydatetime()
    window = TimeRange(midnight, midnight + timedelta(days=1))
    table_slice = TableSlice(
        "bench", table, ("order_date",), (PartitionSlice(day.isoformat(), window),)
    )
    query = sql.SQL(
        "SELECT order_id, customer_id, order_date, ordered_at, status, currency, quantity,"
        " unit_price, amount, is_gift FROM {} WHERE order_date = :d"
    ).format(sql.Identifier("bench", table))

    def ours() -> pd.DataFrame:
        with warehouse.bulk_connection() as conn:
            return arrow_to_frame(read_slice(conn, table_slice, include_row_hash=False))

    def read_sql() -> pd.DataFrame:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(query.as_string()), conn, params={"d": day})

    assert len(ours()) == len(read_sql()) == rows
    return min(timed(ours) for _ in range(3)), min(timed(read_sql) for _ in range(3))


def _merge_statement(table: str, batch: pd.DataFrame) -> sql.Composable:
    """``INSERT … SELECT`` from ``merge_batch`` into ``bench.<table>``, ``ON CONFLICT
    (order_id) DO UPDATE`` of every other column."""
    names = sql.SQL(", ").join(map(sql.Identifier, batch.columns))
    return sql.SQL(
        "INSERT INTO {} ({}) SELECT {} FROM merge_batch ON CONFLICT (order_id) DO UPDATE SET {}"
    ).format(
        sql.Identifier("bench", table),
        names,
        names,
        sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
            for c in batch.columns
            if c != "order_id"
        ),
    )


def hand_merge(warehouse: Warehouse, table: str, batch: pd.DataFrame) -> None:
    """The hand-written upsert as psycopg users write it: a temporary table, ``COPY … FROM
    STDIN`` of the batch's rows, then one ``INSERT … ON CONFLICT DO UPDATE``, one transaction."""
    with psycopg.connect(warehouse.conninfo()) as conn, conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE merge_batch (LIKE {}) ON COMMIT DROP").format(
                sql.Identifier("bench", table)
            )
        )
        columns = sql.SQL(", ").join(map(sql.Identifier, batch.columns))
        copy = sql.SQL("COPY merge_batch ({}) FROM STDIN").format(columns)
        with cursor.copy(copy) as rows:
            for record in batch.to_dict("records"):
                rows.write_row(tuple(record.values()))
        cursor.execute(_merge_statement(table, batch))


def adbc_merge(warehouse: Warehouse, table: str, batch: pd.DataFrame) -> None:
    """The fastest hand-written upsert: ADBC's binary COPY of the batch into a temporary table,
    then the same ``INSERT … ON CONFLICT DO UPDATE`` of every column, in one transaction."""
    with adbc.connect(warehouse.conninfo()) as conn, conn.cursor() as cursor:
        arrow = pa.Table.from_pandas(batch, preserve_index=False)
        cursor.adbc_ingest("merge_batch", arrow, mode="create", temporary=True)
        cursor.execute(_merge_statement(table, batch).as_string())
        conn.commit()


def bench_steady_state(warehouse: Warehouse, engine: sa.Engine, rows: int) -> dict[str, float]:
    """Writes into and reads from a table that already holds ``rows`` rows (the thousandth day,
    not the first): an upsert of a tenth of it (25 % new, 50 % unchanged, 25 % changed) against
    ``hand_merge`` on an identical table, and one day of ``rows // 7`` rows read back from a
    seven-day table against ``pd.read_sql``."""
    base = orders_frame(rows)
    size = rows // 10
    unchanged = base.iloc[: size // 2]
    changed = base.iloc[size // 2 : size * 3 // 4].copy()
    changed["status"] = "returned"
    batch = pd.concat(
        [unchanged, changed, orders_frame(size // 4, first_id=rows, seed=5)], ignore_index=True
    )
    metadata = {"write_mode": "upsert", "primary_key": ["order_id"]}
    for table in ("large_ours", "large_hand", "large_adbc"):
        materialize_frame(warehouse, table, base, {**metadata, "write_mode": "replace_table"}, None)
    del base
    settle(warehouse)
    upsert_s = materialize_frame(warehouse, "large_ours", batch, metadata, None)
    hand_s = timed(lambda: hand_merge(warehouse, "large_hand", batch))
    adbc_s = timed(lambda: adbc_merge(warehouse, "large_adbc", batch))
    for other in ("large_hand", "large_adbc"):
        with warehouse.connection() as conn:
            differ = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM (SELECT order_id, status, amount FROM bench.large_ours"
                    " EXCEPT SELECT order_id, status, amount FROM {}) d"
                ).format(sql.Identifier("bench", other))
            ).fetchone()[0]
        assert differ == 0, f"{differ} rows differ between our upsert and {other}'s"

    per_day = rows // 7
    for n in range(7):
        day = DAY + timedelta(days=n)
        frame = orders_frame(per_day, day, first_id=2 * rows + n * per_day, seed=10 + n)
        materialize_frame(warehouse, "orders_week", frame, ORDERS_METADATA, day.isoformat())
    settle(warehouse)
    read_s, read_sql_s = read_day_both_ways(
        warehouse, engine, "orders_week", DAY + timedelta(days=3), per_day
    )
    return {
        "upsert_into_large_s": upsert_s,
        "hand_merge_into_large_s": hand_s,
        "adbc_merge_into_large_s": adbc_s,
        "read_day_from_large_s": read_s,
        "read_sql_day_from_large_s": read_sql_s,
    }


def bench_backfill(warehouse: Warehouse, rows_per_day: int, days: int = 30) -> dict[str, float]:
    start = date(2026, 10, 1)
    frames = {
        start + timedelta(d): orders_frame(rows_per_day, start + timedelta(d), d * rows_per_day)
        for d in range(days)
    }
    io_manager = PostgresIOManager(warehouse=warehouse)

    @dg.asset(
        key=["bench", "daily_orders"],
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata=ORDERS_METADATA,
    )
    def daily_orders(context: dg.AssetExecutionContext) -> pd.DataFrame:
        window = context.partition_time_window
        count = (window.end - window.start).days
        return pd.concat([frames[window.start.date() + timedelta(d)] for d in range(count)])

    last = start + timedelta(days=days - 1)
    range_tags = {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    resources = {"io_manager": io_manager}

    def single_run() -> None:
        dg.materialize([daily_orders], tags=range_tags, resources=resources)

    def per_partition() -> None:
        for day in frames:
            dg.materialize([daily_orders], partition_key=day.isoformat(), resources=resources)

    def empty_table() -> None:
        run_sql(warehouse, "DROP TABLE IF EXISTS bench.daily_orders")
        settle(warehouse)

    def loaded_table() -> None:
        empty_table()
        single_run()
        settle(warehouse)

    # A backfill fills partitions never materialised; a re-run rewrites the same keys, where every
    # primary-key insert also checks the same-key row its own transaction just deleted.
    return {
        "backfill_single_run_s": median_of(3, empty_table, single_run),
        "backfill_per_partition_s": median_of(3, empty_table, per_partition),
        "rerun_single_run_s": median_of(3, loaded_table, single_run),
        "rerun_per_partition_s": median_of(3, loaded_table, per_partition),
    }


def peak_rss_child(rows: int) -> None:
    """In a fresh process: the write's peak memory above the frame, against the frame's size."""
    warehouse = Warehouse(database_url=os.environ[settings.WAREHOUSE_URL_VAR])
    frame = orders_frame(rows, first_id=0, seed=2)
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    materialize_frame(warehouse, "orders", frame, ORDERS_METADATA, DAY.isoformat())
    done.set()
    sampler.join()
    print(
        json.dumps({"frame_mb": frame_bytes / 2**20, "write_peak_mb": (peak[0] - before) / 2**20})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the replace/upsert table"
    )
    parser.add_argument(
        "--large-rows", type=int, default=2_000_000, help="rows of the steady-state tables"
    )
    parser.add_argument("--child-rss", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        peak_rss_child(args.rows)
        return

    with benchmark_warehouse("bench-io-") as warehouse:
        run_sql(warehouse, "DROP SCHEMA IF EXISTS bench CASCADE")
        engine = engine_for(warehouse)
        figures: dict[str, float] = {"rows": args.rows}
        figures |= bench_replace(warehouse, engine, args.rows)
        figures |= bench_replace_in_larger_table(warehouse, engine, args.rows)
        child_env = {**os.environ, settings.WAREHOUSE_URL_VAR: warehouse.conninfo()}
        child = subprocess.run(
            [sys.executable, __file__, "--child-rss", "--rows", str(args.rows)],
            env=child_env,
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(child.stdout.strip().splitlines()[-1])
        figures |= bench_upsert(warehouse, engine, args.rows)
        figures |= bench_read(warehouse, engine, args.rows // 10)
        figures |= bench_backfill(warehouse, max(args.rows // 100, 1000))
        run_sql(warehouse, "DROP SCHEMA bench CASCADE")  # room for the large tables
        figures |= bench_steady_state(warehouse, engine, args.large_rows)
        figures |= rss
        ratios = {
            "replace_vs_to_sql": figures["to_sql_s"] / figures["replace_s"],
            "replace_vs_adbc": figures["replace_s"] / figures["adbc_ingest_s"],
            "replace_run_vs_to_sql": figures["to_sql_s"] / figures["replace_run_s"],
            "replace_run_vs_adbc": figures["replace_run_s"] / figures["adbc_ingest_s"],
            "upsert_vs_dict_batches": figures["dict_batches_s"] / figures["upsert_s"],
            "upsert_run_vs_dict_batches": figures["dict_batches_s"] / figures["upsert_run_s"],
            "replace_brin_vs_to_sql": figures["to_sql_s"] / figures["replace_brin_s"],
            "replace_larger_table_vs_to_sql": (
                figures["to_sql_larger_table_s"] / figures["replace_larger_table_s"]
            ),
            "replace_native_larger_table_vs_to_sql": (
                figures["to_sql_larger_table_s"] / figures["replace_native_larger_table_s"]
            ),
            "unchanged_rows_updated": figures["unchanged_rows_updated"],
            "read_vs_read_sql": figures["read_sql_s"] / figures["read_s"],
            "backfill_range_vs_per_partition": (
                figures["backfill_per_partition_s"] / figures["backfill_single_run_s"]
            ),
            "rerun_range_vs_per_partition": (
                figures["rerun_per_partition_s"] / figures["rerun_single_run_s"]
            ),
            "peak_rss_vs_frame": rss["write_peak_mb"] / rss["frame_mb"],
            "upsert_into_large_vs_hand_merge": (
                figures["hand_merge_into_large_s"] / figures["upsert_into_large_s"]
            ),
            "upsert_into_large_vs_adbc_merge": (
                figures["adbc_merge_into_large_s"] / figures["upsert_into_large_s"]
            ),
            "read_day_from_large_vs_read_sql": (
                figures["read_sql_day_from_large_s"] / figures["read_day_from_large_s"]
            ),
        }
        print(
            json.dumps(
                {
                    **{k: round(v, 3) for k, v in figures.items()},
                    **{k: round(v, 3) for k, v in ratios.items()},
                }
            )
        )


if __name__ == "__main__":
    main()
