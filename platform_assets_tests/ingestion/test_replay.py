"""The replay job against real dead letters: patches, revalidation, loading, resolving."""

import dagster as dg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from platform_assets.definitions import defs
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.export import export_dead_letters_job
from platform_assets.defs.datasets.replay import replay_dead_letters_job
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all, run_checks_alone, table_checksum
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = SAMPLE_DAYS[0].isoformat()
CHECKS = build_dataset_checks(SPECS_BY_NAME["orders"])


def load_day(resources: dict, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [ORDERS, *CHECKS], partition_key=DAY, resources=resources, instance=instance
    )
    assert result.success
    return result


def run_checks(resources: dict, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The dataset's checks alone on the partition, as the UI's "Execute checks" runs them."""
    selection = dg.AssetSelection.checks_for_assets(ORDERS)
    return run_checks_alone([ORDERS], CHECKS, selection, DAY, resources, instance)


def replay(resources: dict, instance: dg.DagsterInstance, **config) -> dg.ExecuteInProcessResult:
    return replay_dead_letters_job.execute_in_process(
        run_config={"ops": {"replay_dead_letters": {"config": {"dataset": "orders", **config}}}},
        resources={"warehouse": resources["warehouse"]},
        instance=instance,
        raise_on_error=False,
    )


def letters(warehouse: Warehouse) -> dict[int, tuple]:
    rows = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT id, status, attempt_count, resolved_run_id, stage, error_message, payload"
            " FROM platform.dead_letter_records ORDER BY id"
        ),
    )
    return {row[0]: row[1:] for row in rows}


def accounting(warehouse: Warehouse) -> tuple:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered FROM platform.ingestion_accounting"
            " WHERE partition_key = %s"
        ),
        (DAY,),
    )[0]


def fixable_letter(warehouse: Warehouse) -> tuple[int, dict]:
    """A dead letter whose only fault is its quantity, and its payload with that fixed."""
    for letter_id, (_, _, _, _, message, payload) in letters(warehouse).items():
        if message.startswith("quantity: ") or message == "quantity is below 1":
            return letter_id, {**payload, "quantity": "2"}
    raise AssertionError("the sample day has no quantity-only dead letter")


def test_patched_letter_is_loaded_and_resolved_others_counted(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    before = letters(warehouse)
    read, loaded, dead = accounting(warehouse)
    letter_id, patched = fixable_letter(warehouse)

    result = replay(
        resources,
        instance,
        patches=[{"dead_letter_id": letter_id, "payload": patched, "note": "qty", "author": "ana"}],
    )

    assert result.success
    after = letters(warehouse)
    assert after[letter_id][:3] == ("resolved", 2, result.run_id)
    assert after[letter_id][5] == before[letter_id][5]  # the raw payload stays untouched
    for other in set(before) - {letter_id}:
        assert after[other][:3] == ("new", 2, None)
    order = fetch_all(
        warehouse,
        sql.SQL("SELECT quantity, amount FROM sales.orders WHERE order_id = %s"),
        (int(patched["order_id"]),),
    )
    assert order and order[0][0] == 2
    assert accounting(warehouse) == (read, loaded + 1, dead - 1)
    audit = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT dead_letter_id, payload, note, author, run_id FROM platform.dead_letter_patches"
        ),
    )
    assert audit == [(letter_id, patched, "qty", "ana", result.run_id)]
    materialization = result.asset_materializations_for_node("replay_dead_letters")[0]
    assert materialization.partition == DAY and materialization.asset_key == ORDERS.key
    checks = run_checks(resources, instance)
    evaluations = checks.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} >= {"rows_add_up", "dead_letter_ratio", "keys_valid"}
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]
    assert not checks.get_asset_materialization_events()  # the checks ran alone


def test_one_chosen_letter_replays_with_a_patch_of_one_field(resources, instance) -> None:
    """The patch names only the field it corrects; the rest comes from the stored payload, and
    only the chosen letter is replayed (the others are not even attempted)."""
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    before = letters(warehouse)
    letter_id, patched = fixable_letter(warehouse)
    one_field = {
        "dead_letter_id": letter_id,
        "payload": {"quantity": "2"},
        "note": "qty",
        "author": "ana",
    }

    result = replay(resources, instance, dead_letter_ids=[letter_id], patches=[one_field])

    assert result.success
    after = letters(warehouse)
    assert after[letter_id][:3] == ("resolved", 2, result.run_id)
    for other in set(before) - {letter_id}:
        assert after[other][:3] == before[other][:3]  # not attempted
    stored = fetch_all(
        warehouse,
        sql.SQL("SELECT quantity FROM sales.orders WHERE order_id = %s"),
        (int(patched["order_id"]),),
    )
    assert stored == [(2,)]
    audit = fetch_all(warehouse, sql.SQL("SELECT payload FROM platform.dead_letter_patches"))
    assert audit == [({"quantity": "2"},)]  # the audit keeps the patch as given


def test_replaying_again_changes_nothing_but_attempts(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    assert replay(resources, instance).success
    orders_before = table_checksum(warehouse, "sales", "orders")
    first = letters(warehouse)

    assert replay(resources, instance, partitions=[DAY]).success

    assert table_checksum(warehouse, "sales", "orders") == orders_before
    second = letters(warehouse)
    assert all(second[i][1] == first[i][1] + 1 for i in first if first[i][0] == "new")


def test_a_patch_repeating_a_loaded_key_is_refused_not_overwriting(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    letter_id, patched = fixable_letter(warehouse)
    taken = fetch_all(warehouse, sql.SQL("SELECT min(order_id) FROM sales.orders"))[0][0]
    orders_before = table_checksum(warehouse, "sales", "orders")

    patch = {**patched, "order_id": str(taken)}
    result = replay(
        resources,
        instance,
        patches=[{"dead_letter_id": letter_id, "payload": patch, "note": "n", "author": "a"}],
    )

    assert result.success
    status, attempts, _, stage, message, _ = letters(warehouse)[letter_id]
    assert (status, attempts, stage) == ("new", 2, "load")
    assert "already loaded" in message
    assert table_checksum(warehouse, "sales", "orders") == orders_before


def test_patching_an_unknown_letter_fails_and_changes_nothing(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    before = letters(warehouse)

    result = replay(
        resources,
        instance,
        patches=[{"dead_letter_id": 10**9, "payload": {}, "note": "n", "author": "a"}],
    )

    assert not result.success
    error = result.failure_data_for_node("replay_dead_letters").error
    assert "1000000000 is not an unresolved dead letter" in error.message
    assert letters(warehouse) == before


def test_downstream_of_a_replayed_partition_is_stale(resources, instance) -> None:
    """What the UI shows: after a replay loads rows, the day's metrics are out of date."""
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    from platform_assets.defs.sales.assets import daily_order_metrics

    warehouse: Warehouse = resources["warehouse"]
    assets = [ORDERS, daily_order_metrics]
    assert dg.materialize(assets, partition_key=DAY, resources=resources, instance=instance).success
    metrics = daily_order_metrics.key
    fresh = get_stale_status_resolver(instance, assets).get_status(metrics, DAY)
    letter_id, patched = fixable_letter(warehouse)

    patch = {"dead_letter_id": letter_id, "payload": patched, "note": "n", "author": "a"}
    assert replay(resources, instance, patches=[patch]).success

    stale = get_stale_status_resolver(instance, assets).get_status(metrics, DAY)
    assert (fresh, stale) == (StaleStatus.FRESH, StaleStatus.STALE)


def test_dead_letters_export_from_the_job(resources, instance, tmp_path) -> None:
    load_day(resources, instance)
    path = tmp_path / "failures.parquet"
    config = {"dataset": "orders", "partition_key": DAY, "path": str(path)}

    result = export_dead_letters_job.execute_in_process(
        run_config={"ops": {"export_dead_letters_op": {"config": config}}},
        resources={"warehouse": resources["warehouse"]},
        instance=instance,
    )

    exported = pq.read_table(path)
    assert result.success and exported.num_rows == len(letters(resources["warehouse"])) > 0
    assert set(exported.column("status").to_pylist()) == {"new"}


def test_the_launchpad_asks_which_dataset(resources, instance) -> None:
    """No dataset by default: launched as the launchpad first shows it, the run is refused
    naming the field, instead of replaying a dataset nobody chose."""
    with pytest.raises(dg.DagsterInvalidConfigError, match="dataset"):
        replay_dead_letters_job.execute_in_process(
            run_config={"ops": {"replay_dead_letters": {"config": {}}}},
            resources={"warehouse": resources["warehouse"]},
            instance=instance,
        )


@pytest.mark.parametrize(
    "job", ["replay_dead_letters_job", "discard_dead_letters_job", "export_dead_letters_job"]
)
def test_the_launchpad_lists_only_what_the_job_uses(job: str) -> None:
    """The code location's jobs as the UI loads them: a dead-letter job's launchpad offers the
    warehouse it writes (and the IO manager of its output), not the migrations' resources."""
    schema = defs.resolve_job_def(job).run_config_schema.config_type.fields
    assert set(schema["resources"].config_type.fields) == {"warehouse", "io_manager"}
