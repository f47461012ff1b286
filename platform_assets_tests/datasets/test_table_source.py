"""A table source declared in YAML (the shipped ``customers`` dataset): an incremental extract,
exactly once by a checkpoint committed with its rows, with dead letters that a newer version of
their row supersedes, and checks counted in the source."""

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets import table_extracts
from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.jobs import LOAD_JOBS
from platform_assets.defs.datasets.replay import replay_dead_letters_job
from platform_assets.defs.datasets.schedules import DATASET_SCHEDULES
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.lib.dead_letters.side_writes import read_checkpoint
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import new_database
from platform_assets_tests.helpers import check_evaluation, fetch_all
from platform_assets_tests.migrations.conftest import run_migrations
from platform_assets_tests.migrations.test_migration_job import guard_metadata

CUSTOMERS = SPECS_BY_NAME["customers"]
SOURCE_DDL = [
    "CREATE SCHEMA crm",
    "CREATE TABLE crm.customers (id bigint PRIMARY KEY, name text, email text,"
    " created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL)",
    # 50 customers last changed an hour ago, a second apart: older than any safety lag
    "INSERT INTO crm.customers (id, name, email, updated_at) SELECT i, 'customer ' || i,"
    " 'c' || i || '@example.com', now() - interval '1 hour' + i * interval '1 second'"
    " FROM generate_series(1, 50) i",
]
# Changes below are stamped "now() - interval '10 seconds'": older than the shipped spec's 5 s
# safety lag, newer than every row the fixture made.


def create_source(warehouse: Warehouse) -> None:
    with warehouse.connection() as conn:
        for schema in ("crm", "staging"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        for statement in SOURCE_DDL[:2]:
            conn.execute(statement)
        conn.execute(SOURCE_DDL[2])


@pytest.fixture
def source(clean_warehouse: Warehouse) -> Iterator[Warehouse]:
    """crm.customers in the warehouse itself, as the shipped sample has it."""
    create_source(clean_warehouse)
    yield clean_warehouse
    with clean_warehouse.connection() as conn:
        conn.execute("DROP SCHEMA IF EXISTS staging CASCADE")


def with_source(**changes: object) -> DatasetSpec:
    """The shipped customers spec with its source changed (chunk size, safety lag)."""
    return CUSTOMERS.model_copy(update={"source": CUSTOMERS.source.model_copy(update=changes)})


def extract(
    warehouse: Warehouse, spec: DatasetSpec = CUSTOMERS, **kwargs: object
) -> dg.ExecuteInProcessResult:
    """One run of the extract and all its checks, as the schedule launches it."""
    return dg.materialize(
        [build_dataset_asset(spec), *build_dataset_checks(spec)],
        resources={"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)},
        **kwargs,
    )


def figures(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    keys = ("rows_read", "rows_dead_lettered", "rows_inserted", "rows_updated")
    return {k: metadata[k].value for k in keys}


def checks_passed(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def checkpoint(warehouse: Warehouse) -> dict | None:
    with warehouse.connection() as conn:
        return read_checkpoint(conn, "customers")


def letters(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT payload->>'id', status, partition_key FROM platform.dead_letter_records"
            " ORDER BY id"
        ),
    )


def accounting(warehouse: Warehouse) -> tuple:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered, rows_discarded"
            " FROM platform.ingestion_accounting WHERE asset_key = 'staging/customers'"
        ),
    )[0]


def test_extracts_everything_then_only_what_changed(source: Warehouse) -> None:
    first = extract(source)
    assert figures(first) == {
        "rows_read": 50,
        "rows_dead_lettered": 0,
        "rows_inserted": 50,
        "rows_updated": 0,
    }
    assert all(checks_passed(first).values()) and len(checks_passed(first)) == 5
    assert checkpoint(source)["key"] == 50
    assert figures(extract(source))["rows_read"] == 0

    with source.connection() as conn:
        conn.execute(
            "UPDATE crm.customers SET name = name || ' (moved)',"
            " updated_at = now() - interval '10 seconds'"
            " WHERE id IN (3, 17, 41)"
        )
    moved = extract(source)
    assert figures(moved) == {
        "rows_read": 3,
        "rows_dead_lettered": 0,
        "rows_inserted": 0,
        "rows_updated": 3,
    }
    assert all(checks_passed(moved).values())
    stored = fetch_all(
        source, sql.SQL("SELECT id FROM staging.customers WHERE name LIKE '%%(moved)' ORDER BY id")
    )
    assert stored == [(3,), (17,), (41,)]
    assert checkpoint(source)["key"] == 41
    assert accounting(source) == (53, 53, 0, 0)  # over every extract


def test_the_hourly_schedule_launches_the_load_job_which_extracts(source: Warehouse) -> None:
    schedule = next(s for s in DATASET_SCHEDULES if s.name == "customers_schedule")
    tick = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.run_key == "customers:2026-11-30T14:00:00+00:00"
    assert request.partition_key is None
    defs = dg.Definitions(
        assets=[build_dataset_asset(CUSTOMERS)],
        asset_checks=build_dataset_checks(CUSTOMERS),
        jobs=[LOAD_JOBS["customers"]],
        resources={"warehouse": source, "io_manager": PostgresIOManager(warehouse=source)},
    )
    result = defs.resolve_job_def(schedule.job_name).execute_in_process(tags=request.tags)
    assert result.success and figures(result)["rows_inserted"] == 50
    assert all(checks_passed(result).values()) and len(checks_passed(result)) == 5


def test_automation_extracts_once_on_the_first_start(
    source: Warehouse, instance: dg.DagsterInstance
) -> None:
    defs = dg.Definitions(
        assets=[build_dataset_asset(CUSTOMERS)],
        resources={"warehouse": source, "io_manager": PostgresIOManager(warehouse=source)},
    )
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 1
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert again.total_requested == 0  # requested once, not every tick while missing
    assert extract(source, instance=instance).success
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=again.cursor)
    assert after.total_requested == 0


def test_rows_younger_than_the_safety_lag_wait_for_the_next_extract(source: Warehouse) -> None:
    with source.connection() as conn:
        conn.execute("UPDATE crm.customers SET updated_at = now() WHERE id = 50")
    assert figures(extract(source))["rows_read"] == 49
    assert checkpoint(source)["key"] == 49
    waited = extract(source, with_source(safety_lag_s=0))
    assert figures(waited)["rows_read"] == 1 and checkpoint(source)["key"] == 50


def with_mark_type(mark_type: str) -> DatasetSpec:
    """The shipped customers spec with its updated_at declared as ``mark_type``."""
    document = CUSTOMERS.model_dump(exclude_none=True)
    for column in document["columns"]:
        if column["name"] == "updated_at":
            column["type"] = mark_type
    return DatasetSpec.model_validate(document)


def retype_updated_at(warehouse: Warehouse, pg_type: str) -> None:
    """Make the source's updated_at a ``pg_type`` column, its times read as UTC."""
    with warehouse.connection() as conn:
        conn.execute(
            sql.SQL(
                "ALTER TABLE crm.customers ALTER COLUMN updated_at TYPE {}"
                " USING updated_at AT TIME ZONE 'UTC'"
            ).format(sql.SQL(pg_type))
        )


@pytest.mark.parametrize("mark_type", ["timestamptz", "timestamp"])
def test_bad_rows_wait_as_dead_letters_until_a_newer_version_supersedes_them(
    source: Warehouse, mark_type: str
) -> None:
    """Also with an updated_at that has no time zone (as Rails and Django without USE_TZ write
    it), read as UTC: the mark is a wall-clock time, and letters are superseded by it."""
    spec = with_mark_type(mark_type)
    retype_updated_at(source, mark_type)
    with source.connection() as conn:
        conn.execute("UPDATE crm.customers SET email = 'not an address' WHERE id = 8")
        conn.execute("UPDATE crm.customers SET name = NULL WHERE id = 9")
    first = extract(source, spec)
    assert figures(first)["rows_dead_lettered"] == 2
    assert all(checks_passed(first).values())  # both letters counted as where their rows went
    assert letters(source) == [("8", "new", "*"), ("9", "new", "*")]
    assert checkpoint(source)["key"] == 50  # the mark passes dead letters: they are stored
    with_zone = datetime.fromisoformat(checkpoint(source)["updated_at"]).tzinfo is not None
    assert with_zone == (mark_type == "timestamptz")
    stored = fetch_all(
        source,
        sql.SQL(
            "SELECT count(*) FROM staging.customers s JOIN crm.customers c USING (id)"
            " WHERE s.updated_at = c.updated_at"
        ),
    )
    assert stored == [(48,)]  # every stored row at the source's very time

    with source.connection() as conn:  # the CRM corrects customer 8
        conn.execute(
            "UPDATE crm.customers SET email = 'c8@example.com',"
            " updated_at = now() - interval '10 seconds'"
            " WHERE id = 8"
        )
    fixed = extract(source, spec)
    metadata = fixed.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["superseded_dead_letters"].value == 1
    assert letters(source) == [("8", "discarded", "*"), ("9", "new", "*")]
    assert accounting(source) == (51, 49, 1, 1)
    assert all(checks_passed(fixed).values())
    note = fetch_all(source, sql.SQL("SELECT author, note FROM platform.dead_letter_discards"))
    assert note[0][0] == "platform (superseded)" and "newer version" in note[0][1]


@pytest.mark.parametrize(
    ("declared", "actual"), [("timestamptz", "timestamp"), ("timestamp", "timestamptz")]
)
def test_an_updated_at_of_another_type_than_declared_is_refused_loudly(
    source: Warehouse, declared: str, actual: str
) -> None:
    retype_updated_at(source, actual)
    result = extract(source, with_mark_type(declared), raise_on_error=False)
    assert figures(result)["rows_dead_lettered"] == 50
    ratio = check_evaluation(result, "dead_letter_ratio")
    assert not ratio.passed
    assert ratio.metadata["top_rules_broken"].value["updated_at:type"] == 50


def test_a_patched_dead_letter_replays_into_the_table(source: Warehouse) -> None:
    with source.connection() as conn:
        conn.execute("UPDATE crm.customers SET name = NULL WHERE id = 9")
    assert extract(source).success
    (letter_id, payload), *_ = fetch_all(
        source, sql.SQL("SELECT id, payload FROM platform.dead_letter_records")
    )
    patched = {**payload, "name": "customer 9 (from the letter)"}
    replay_config = {
        "dataset": "customers",
        "patches": [
            {"dead_letter_id": letter_id, "payload": patched, "note": "name", "author": "ops"}
        ],
    }
    result = replay_dead_letters_job.execute_in_process(
        run_config={"ops": {"replay_dead_letters": {"config": replay_config}}},
        resources={"warehouse": source},
    )
    assert result.success
    assert fetch_all(source, sql.SQL("SELECT name FROM staging.customers WHERE id = 9")) == [
        ("customer 9 (from the letter)",)
    ]
    assert letters(source) == [("9", "resolved", "*")]
    assert accounting(source) == (50, 50, 0, 0)
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        "rows_add_up": True,
        "dead_letter_ratio": True,
        "keys_valid": True,
        "source_rows_accounted": True,
    }


def test_damage_behind_the_extract_fails_the_checks_naming_keys(source: Warehouse) -> None:
    assert extract(source).success
    with source.connection() as conn:  # stored rows vanish, one changes behind the extract's back
        conn.execute("DELETE FROM staging.customers WHERE id > 47")
        conn.execute("UPDATE staging.customers SET updated_at = now() WHERE id = 5")
    spec = CUSTOMERS
    checked = dg.materialize(
        [build_dataset_asset(spec), *build_dataset_checks(spec)],
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(spec.asset_key)),
        resources={"warehouse": source, "io_manager": PostgresIOManager(warehouse=source)},
        raise_on_error=False,
    )
    accounted = check_evaluation(checked, "source_rows_accounted")
    assert not accounted.passed
    assert accounted.metadata["missing_keys"].value == [48, 49, 50]
    assert accounted.metadata["other_version_keys"].value == [5]


def test_rows_deleted_in_the_source_are_reported_not_counted_as_lost(source: Warehouse) -> None:
    """An extract by updated_at cannot see a delete; the check says which stored rows the source
    no longer holds, and still passes: nothing the extract was given is missing."""
    assert extract(source).success
    with source.connection() as conn:
        conn.execute("DELETE FROM crm.customers WHERE id IN (3, 4)")
    again = extract(source)
    accounted = check_evaluation(again, "source_rows_accounted")
    assert accounted.passed
    assert accounted.metadata["deleted_in_source"].value == 2
    assert accounted.metadata["deleted_in_source_keys"].value == [3, 4]
    assert "2 stored rows were deleted in the source" in accounted.description
    assert fetch_all(source, sql.SQL("SELECT count(*) FROM staging.customers")) == [(50,)]


def test_rows_without_a_change_time_are_named_not_silently_skipped(source: Warehouse) -> None:
    """A row with a NULL updated_at (or a NULL key, in a source without a primary key) has no
    place in the mark's order: no extract can take it. The extract loads the rest and the check
    names it; once stamped and keyed, the next extract takes it."""
    with source.connection() as conn:
        conn.execute("ALTER TABLE crm.customers ALTER COLUMN updated_at DROP NOT NULL")
        conn.execute("ALTER TABLE crm.customers DROP CONSTRAINT customers_pkey")
        conn.execute("ALTER TABLE crm.customers ALTER COLUMN id DROP NOT NULL")
        conn.execute("UPDATE crm.customers SET updated_at = NULL WHERE id IN (7, 30)")
        conn.execute(
            "INSERT INTO crm.customers (id, name, email, updated_at)"
            " VALUES (NULL, 'no id', 'n@example.com', now() - interval '10 seconds')"
        )
    first = extract(source, raise_on_error=False)
    assert figures(first)["rows_read"] == 48
    accounted = check_evaluation(first, "source_rows_accounted")
    assert not accounted.passed
    assert accounted.metadata["unmarked_rows"].value == 3
    assert accounted.metadata["unmarked_keys"].value == [7, 30]
    assert "3 source rows have no updated_at or no id" in accounted.description
    assert accounted.metadata["missing_keys"].value == []

    with source.connection() as conn:
        conn.execute(
            "UPDATE crm.customers SET id = coalesce(id, 51),"
            " updated_at = now() - interval '10 seconds' WHERE updated_at IS NULL OR id IS NULL"
        )
    second = extract(source)
    assert figures(second)["rows_read"] == 3
    assert checks_passed(second)["source_rows_accounted"]
    stored = fetch_all(source, sql.SQL("SELECT count(*) FROM staging.customers"))
    assert stored == [(51,)]


def test_an_extract_that_lost_the_race_writes_nothing(
    source: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert extract(source).success
    with source.connection() as conn:
        conn.execute(
            "UPDATE crm.customers SET name = 'late', updated_at = now() - interval '10 seconds'"
            " WHERE id = 4"
        )
    # As if it had read the mark before the first extract committed: it would store every row
    # again, so its commit must fail and leave everything as it was.
    monkeypatch.setattr(table_extracts, "read_checkpoint", lambda conn, name: None)
    stale = extract(source, raise_on_error=False)
    assert not stale.success
    failure = stale.get_step_failure_events()[0].step_failure_data.error
    assert "another extract committed these changes first" in str(failure)
    assert accounting(source) == (50, 50, 0, 0)
    assert fetch_all(source, sql.SQL("SELECT name FROM staging.customers WHERE id = 4")) == [
        ("customer 4",)
    ]


def test_the_source_can_be_a_database_of_its_own(
    source: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    with new_database(source, "crm_test") as url:
        crm = Warehouse(database_url=url)
        try:
            create_source(crm)
            with crm.connection() as conn:
                conn.execute("UPDATE crm.customers SET name = name || ' (crm db)'")
            with source.connection() as conn:
                conn.execute("DROP SCHEMA crm CASCADE")
            monkeypatch.setenv("PLATFORM_CRM_DATABASE_URL", url)
            result = extract(source)
        finally:
            crm.close()
        assert figures(result)["rows_read"] == 50
        assert all(checks_passed(result).values())
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["source_database"].value == "$PLATFORM_CRM_DATABASE_URL"
        assert url not in str(result.all_events)
        names = fetch_all(
            source, sql.SQL("SELECT DISTINCT name LIKE '%%(crm db)' FROM staging.customers")
        )
        assert names == [(True,)]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import dagster as dg
    from platform_assets.defs.datasets import table_extracts
    from platform_assets.defs.datasets.specs import SPECS_BY_NAME
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.warehouse.resource import Warehouse

    changed_rows = table_extracts.changed_rows

    def dies_after_two_chunks(*args):
        for number, chunk in enumerate(changed_rows(*args)):
            if number == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback from here
            yield chunk

    table_extracts.changed_rows = dies_after_two_chunks
    spec = SPECS_BY_NAME["customers"]
    spec = spec.model_copy(update={"source": spec.source.model_copy(update={"chunk_rows": 10})})
    warehouse = Warehouse(database_url=sys.argv[1] or None)
    dg.materialize(
        [table_extracts.build_table_extract_asset(spec)],
        resources={"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)},
    )
    """
)


def test_a_process_killed_between_chunks_leaves_the_checkpoint(source: Warehouse) -> None:
    assert extract(source).success
    before = checkpoint(source)
    staged = fetch_all(source, sql.SQL("SELECT * FROM staging.customers ORDER BY id"))
    with source.connection() as conn:
        conn.execute(
            "UPDATE crm.customers SET name = name || ' v2',"
            " updated_at = now() - interval '10 seconds'"
        )

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
    assert figures(resumed)["rows_updated"] == 50
    assert all(checks_passed(resumed).values())
    assert checkpoint(source)["key"] == 50


def test_chunks_come_from_one_snapshot_and_the_last_mark_commits(source: Warehouse) -> None:
    result = extract(source, with_source(chunk_rows=7))
    assert figures(result)["rows_inserted"] == 50
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["high_water"].value == checkpoint(source)
    assert checkpoint(source)["key"] == 50


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"partitions": {"start": "2026-01-01"}}, "declare no partitions"),
        ({"write_mode": "append"}, "upserted by its key"),
        ({"primary_key": ["name"]}, "upserted by its key"),
    ],
)
def test_the_spec_refuses_what_an_incremental_extract_cannot_do(change: dict, message: str) -> None:
    document = CUSTOMERS.model_dump(exclude_none=True) | change
    with pytest.raises(ValueError, match=message):
        DatasetSpec.model_validate(document)


def test_the_high_water_columns_must_be_declared_with_their_types() -> None:
    document = CUSTOMERS.model_dump(exclude_none=True)
    document["columns"] = [c for c in document["columns"] if c["name"] != "updated_at"]
    with pytest.raises(
        ValueError, match="'updated_at' must be a declared timestamptz or timestamp"
    ):
        DatasetSpec.model_validate(document)


def with_columns(columns: list[dict]) -> DatasetSpec:
    """The shipped customers spec with other declared columns."""
    return CUSTOMERS.model_copy(
        update={"columns": [CUSTOMERS.columns[0].model_validate(c) for c in columns]}
    )


def test_a_table_source_s_spec_changes_are_planned_and_applied_as_a_file_source_s(
    source: Warehouse,
) -> None:
    assert extract(source).success
    declared = [c.model_dump(exclude_defaults=True) for c in CUSTOMERS.columns]
    email_required = with_columns(
        [{**c, "required": True} if c["name"] == "email" else c for c in declared]
    )

    def migrate(spec: DatasetSpec, **config: object) -> dg.ExecuteInProcessResult:
        return run_migrations(source, migrations=[], dataset_specs=[spec], **config)

    (planned,) = guard_metadata(migrate(email_required))["planned_from_specs"].value
    assert "email NOT NULL" in planned["description"]
    assert migrate(email_required, confirm=True).success
    assert not_null(source, "staging", "customers")["email"]

    no_email = with_columns([c for c in declared if c["name"] != "email"])
    (planned,) = guard_metadata(migrate(no_email))["planned_from_specs"].value
    assert "drop email (text)" in planned["description"]
    assert migrate(no_email, confirm=True).success
    assert "email" not in not_null(source, "staging", "customers")
    assert extract(source, no_email).success


def not_null(warehouse: Warehouse, schema: str, table: str) -> dict[str, bool]:
    """Each column of the table, and whether it is NOT NULL."""
    return dict(
        fetch_all(
            warehouse,
            sql.SQL(
                "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = {}::regclass"
                " AND attnum > 0 AND NOT attisdropped"
            ).format(sql.Literal(f"{schema}.{table}")),
        )
    )
