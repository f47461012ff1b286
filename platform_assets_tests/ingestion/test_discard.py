"""Discarding dead letters from the launchpad: audited, all or none, and ``rows_add_up`` stays
true; every load, replay and discard records what the queue holds as an observation."""

import dagster as dg
from psycopg import sql

from platform_assets.defs.datasets.discard import discard_dead_letters_job
from platform_assets.lib.dead_letters.observation import dead_letters_key
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import check_evaluation, fetch_all
from platform_assets_tests.ingestion.test_replay import (
    DAY,
    accounting,
    letters,
    load_day,
    run_checks,
)


def discard(resources: dict, instance: dg.DagsterInstance, **config) -> dg.ExecuteInProcessResult:
    return discard_dead_letters_job.execute_in_process(
        run_config={"ops": {"discard_dead_letters": {"config": {"dataset": "orders", **config}}}},
        resources={"warehouse": resources["warehouse"]},
        instance=instance,
        raise_on_error=False,
    )


def observations(instance: dg.DagsterInstance) -> list[dg.AssetObservation]:
    records = instance.fetch_observations(dead_letters_key("sales/orders"), limit=100).records
    return [record.asset_observation for record in records]


def test_discarded_letters_are_audited_and_the_partition_still_adds_up(resources, instance):
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    read, loaded, dead = accounting(warehouse)
    chosen = sorted(letters(warehouse))[:2]

    result = discard(resources, instance, dead_letter_ids=chosen, note="test orders", author="ana")

    assert result.success
    statuses = {k: v[0] for k, v in letters(warehouse).items()}
    assert [statuses[k] for k in chosen] == ["discarded", "discarded"]
    assert sum(s == "new" for s in statuses.values()) == dead - 2
    figures = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered, rows_discarded"
            " FROM platform.ingestion_accounting WHERE partition_key = %s"
        ),
        (DAY,),
    )
    assert figures == [(read, loaded, dead - 2, 2)]
    audit = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT dead_letter_id, partition_key, note, author, run_id"
            " FROM platform.dead_letter_discards ORDER BY dead_letter_id"
        ),
    )
    assert audit == [(k, DAY, "test orders", "ana", result.run_id) for k in chosen]
    checks = run_checks(resources, instance)
    assert check_evaluation(checks, "rows_add_up").passed

    latest = observations(instance)[0]
    assert latest.metadata["discarded"].value == 2
    assert latest.metadata["new"].value == dead - 2


def test_a_discard_naming_an_unknown_letter_discards_nothing(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    before = letters(warehouse)
    known = sorted(before)[0]
    result = discard(resources, instance, dead_letter_ids=[known, 10**9], note="n", author="a")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert f"[{10**9}] are not unresolved dead letters of sales/orders" in failure
    assert letters(warehouse) == before


def test_a_discard_without_a_note_or_author_is_refused(resources, instance) -> None:
    load_day(resources, instance)
    result = discard(resources, instance, dead_letter_ids=[1])
    assert not result.success
    assert "needs a note" in result.get_step_failure_events()[0].step_failure_data.error.message


def test_each_load_records_the_queue_as_an_observation(resources, instance) -> None:
    warehouse: Warehouse = resources["warehouse"]
    load_day(resources, instance)
    stored = letters(warehouse)
    (observed,) = observations(instance)
    metadata = observed.metadata
    assert metadata["dataset"].value == "sales/orders"
    assert metadata["new"].value == len(stored)
    assert metadata["resolved"].value == 0
    (row,) = metadata["partitions"].value.records
    assert row.data == {
        "partition_key": DAY,
        "new": len(stored),
        "replaying": 0,
        "resolved": 0,
        "discarded": 0,
    }
    sample = metadata["unresolved_sample"].value
    assert all(f"| {letter_id} | {DAY} |" in sample for letter_id in sorted(stored)[-3:])
    top = metadata["top_rules_broken"].value  # the five rules broken most, by letters breaking them
    assert len(top) == 5 and min(top.values()) >= 1
