"""The platform's instance stores a range run's events in batches, and stores what Dagster's own
one-event-at-a-time path stores: the same planned events, check executions and asset rows, each
partition's materialisation; its check results without a catalog query each."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.instance.ref import InstanceRef
from sqlalchemy import event

from platform_assets.definitions import defs
from platform_assets.lib import settings
from platform_assets.lib.server.instance_storage import EVENT_BATCH_SIZE_VAR
from platform_assets_tests.conftest import REPO_ROOT

ORDERS = dg.AssetKey(["sales", "orders"])
METRICS = dg.AssetKey(["sales", "daily_order_metrics"])
DAYS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
RANGE = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}


@pytest.fixture
def platform_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance_database_url: str
) -> dg.DagsterInstance:
    """An instance as dagster.yaml configures it, on a database of its own."""
    monkeypatch.setenv(settings.DAGSTER_STORAGE_URL_VAR, instance_database_url)
    monkeypatch.delenv(EVENT_BATCH_SIZE_VAR, raising=False)  # the storage's default
    with dg.DagsterInstance.from_ref(
        InstanceRef.from_dir(str(tmp_path), config_dir=str(REPO_ROOT))
    ) as instance:
        yield instance


def stored_planning(url: str, run_id: str) -> tuple[set, set]:
    """The run's planned materialisations (asset, partition) and planned check executions
    (asset, check, partition, status), as the instance database holds them."""
    with psycopg.connect(url.replace("postgresql+psycopg2://", "postgresql://")) as conn:
        planned = conn.execute(
            "SELECT asset_key, partition FROM event_logs WHERE run_id = %s"
            " AND dagster_event_type = 'ASSET_MATERIALIZATION_PLANNED'",
            (run_id,),
        ).fetchall()
        checks = conn.execute(
            "SELECT asset_key, check_name, partition, execution_status"
            " FROM asset_check_executions WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    assert len(planned) == len(set(planned))
    return set(planned), set(checks)


def test_a_range_run_s_planned_events_are_stored_as_dagster_stores_them_one_by_one(
    platform_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    instance_database_url: str,
) -> None:
    assert os.environ[EVENT_BATCH_SIZE_VAR] == "500"  # set by the storage
    graph = defs.resolve_asset_graph()
    selection = dg.AssetSelection.assets(ORDERS, METRICS)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(selection.resolve(graph)),
        asset_check_selection=set(selection.resolve_checks(graph)),
    )

    def create_run() -> str:
        run = platform_instance.create_run_for_job(
            job, tags=RANGE, asset_selection=frozenset({ORDERS, METRICS})
        )
        return run.run_id

    batched = create_run()
    batched_planned, batched_checks = stored_planning(instance_database_url, batched)
    for key in (ORDERS, METRICS):
        assert platform_instance.get_asset_records([key])[0].asset_entry.last_run_id == batched
    monkeypatch.setenv(EVENT_BATCH_SIZE_VAR, "0")  # Dagster's own path: one event at a time
    one_by_one = create_run()
    planned, checks = stored_planning(instance_database_url, one_by_one)

    assert batched_planned == planned
    assert planned == {(key.to_string(), day) for key in (ORDERS, METRICS) for day in DAYS}
    assert batched_checks == checks
    check_keys = set(selection.resolve_checks(graph))
    assert checks == {
        (check.asset_key.to_string(), check.name, day, "PLANNED")
        for check in check_keys
        for day in DAYS
    }
    for key in (ORDERS, METRICS):
        assert platform_instance.get_asset_records([key])[0].asset_entry.last_run_id == one_by_one


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date=DAYS[0]))
def daily_figure() -> dg.MaterializeResult:
    """Nothing stored: a range run of it writes one materialisation per day."""
    return dg.MaterializeResult()


def test_a_range_run_stores_each_partition_s_materialisation(
    platform_instance: dg.DagsterInstance,
) -> None:
    result = dg.materialize([daily_figure], instance=platform_instance, tags=RANGE)
    assert result.success
    records = platform_instance.fetch_materializations(daily_figure.key, limit=10).records
    assert sorted(record.partition_key for record in records) == DAYS
    assert {record.run_id for record in records} == {result.run_id}
    assert platform_instance.get_materialized_partitions(daily_figure.key) == set(DAYS)
    last = platform_instance.get_asset_records([daily_figure.key])[0].asset_entry
    assert last.last_materialization_record.storage_id == max(r.storage_id for r in records)


@dg.asset_check(
    asset=daily_figure,
    partitions_def=dg.DailyPartitionsDefinition(start_date=DAYS[0]),
)
def daily_figure_is_there(
    context: dg.AssetCheckExecutionContext,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One result per partition of the run, as the datasets' partition checks report them."""
    for day in context.partition_keys:
        yield dg.AssetCheckEvaluation(
            asset_key=daily_figure.key,
            check_name="daily_figure_is_there",
            passed=True,
            partition=day,
        )
    yield dg.Output(None)


def test_a_range_run_s_check_results_are_stored_without_a_catalog_query_each(
    platform_instance: dg.DagsterInstance, instance_database_url: str
) -> None:
    asked: list[dict] = []
    engine = platform_instance.event_log_storage._engine
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, parameters, *_: (
            asked.append(parameters) if "pg_catalog.pg_class" in statement else None
        ),
    )
    result = dg.materialize(
        [daily_figure, daily_figure_is_there], instance=platform_instance, tags=RANGE
    )
    assert result.success
    with psycopg.connect(
        instance_database_url.replace("postgresql+psycopg2://", "postgresql://")
    ) as conn:
        stored = conn.execute(
            "SELECT partition, execution_status FROM asset_check_executions"
            " WHERE run_id = %s AND check_name = 'daily_figure_is_there'",
            (result.run_id,),
        ).fetchall()
    assert sorted(stored) == [(day, "SUCCEEDED") for day in DAYS]
    # Dagster asks whether the check table exists before storing each of the four results.
    checks_table = [p for p in asked if "asset_check_executions" in str(p)]
    assert len(checks_table) <= 1, asked
