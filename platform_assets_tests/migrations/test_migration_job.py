"""The guarded migration job against a real database: apply, dry run, refusals, rollbacks."""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from platform_assets.lib.migrations.baseline import capture_baseline, measure
from platform_assets.lib.migrations.ledger import MigrationRefused
from platform_assets.lib.migrations.lock import LOCK_KEY
from platform_assets.lib.migrations.model import Check, Migration
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import admin_conninfo
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import CUSTOMERS, SAMPLE_MIGRATIONS, run_migrations

TIER = SAMPLE_MIGRATIONS[0]


def expected_tier(customer_id: int) -> str:
    """The tier from the fixture's order counts, computed without the database."""
    orders = customer_id % 120
    if orders >= 100:
        return "platinum"
    if orders >= 50:
        return "gold"
    return "silver" if orders >= 10 else "bronze"


def state(warehouse: Warehouse) -> dict:
    """The customers table as the baseline sees it."""
    with warehouse.connection() as conn:
        return capture_baseline(conn, "crm", "customers", "id")


def ledger(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT migration_id, status, backfill_batches, backfill_rows, source_sha256"
            " FROM platform.migration_ledger"
        ),
    )


def cause_message(result) -> str:
    """The platform's own error (refusal or failure) behind the failed step or run."""
    failure = next(e for e in result.all_events if e.is_failure)
    error = (
        failure.step_failure_data.error
        if failure.step_failure_data
        else failure.event_specific_data.error
    )
    while error is not None:
        if error.cls_name in ("MigrationFailed", "MigrationRefused"):
            return error.message
        error = error.cause
    raise AssertionError("no MigrationFailed or MigrationRefused in the failure")


def test_dry_run_changes_nothing(shop: Warehouse) -> None:
    before = state(shop)
    result = run_migrations(shop)
    assert result.success
    assert state(shop) == before
    assert ledger(shop) == []
    guard = result.output_for_node("guard")
    assert guard.dry_run and guard.migration.id == "0001_customer_tier"
    metadata = guard_metadata(result)
    assert "ALTER TABLE crm.customers ADD COLUMN IF NOT EXISTS tier text" in metadata["sql"].value
    assert metadata["lint_findings"].value == []
    assert metadata["estimated_table_rows"].value == CUSTOMERS  # EXPLAIN, after ANALYZE
    skipped = {
        event.step_key: event.step_output_data.metadata["skipped"].value
        for event in result.all_events
        if event.is_successful_output and "skipped" in event.step_output_data.metadata
    }
    dry = "skipped: dry run (launch with confirm: true in the guard's config to apply)"
    assert skipped == dict.fromkeys(["forward", "backfill", "constraints", "post_validate"], dry)


def test_applies_the_tier_migration_and_records_it(shop: Warehouse) -> None:
    before = state(shop)
    result = run_migrations(shop, confirm=True, batch_size=64, pause_ms=0)
    assert result.success

    tiers = dict(fetch_all(shop, sql.SQL("SELECT id, tier FROM crm.customers")))
    assert tiers == {i: expected_tier(i) for i in range(1, CUSTOMERS + 1)}
    assert set(Counter(tiers.values())) == {"bronze", "silver", "gold", "platinum"}
    column = fetch_all(
        shop,
        sql.SQL(
            "SELECT is_nullable, column_default FROM information_schema.columns"
            " WHERE table_schema = 'crm' AND table_name = 'customers' AND column_name = 'tier'"
        ),
    )
    assert column == [("NO", "'bronze'::text")]
    with shop.connection() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE crm.customers SET tier = 'diamond' WHERE id = 1")
    [(migration_id, status, batches, rows, digest)] = ledger(shop)
    assert (migration_id, status, rows) == ("0001_customer_tier", "applied", CUSTOMERS)
    assert batches == -(-CUSTOMERS // 64) and digest == TIER.source_sha256
    after = state(shop)
    assert after["row_count"] == before["row_count"] and after["columns"][-1] == "tier"

    again = run_migrations(shop, confirm=True)
    assert again.success and again.output_for_node("record") == "nothing to apply"


def failing(step: str) -> Migration:
    """The tier migration with a failure planted in ``step``."""
    if step == "pre-checks":
        return replace(TIER, pre_checks=[*TIER.pre_checks, Check("never", "SELECT false")])
    if step == "forward":
        missing = "ALTER TABLE crm.customers ALTER COLUMN nope SET DEFAULT 1"
        return replace(TIER, forward=[*TIER.forward, missing])
    if step == "backfill":  # dies in the batch holding customer 301, after some batches committed
        broken = TIER.backfill.statement.replace(
            "SET tier = CASE", "SET tier = CASE WHEN c.id = 301 THEN (1 / (301 - c.id))::text"
        )
        return replace(TIER, backfill=replace(TIER.backfill, statement=broken))
    if step == "constraints":
        return replace(
            TIER,
            constraints=[
                "ALTER TABLE crm.customers ADD CONSTRAINT only_gold"
                " CHECK (tier = 'gold') NOT VALID",
                "ALTER TABLE crm.customers VALIDATE CONSTRAINT only_gold",
            ],
        )
    return replace(TIER, validate=[*TIER.validate, Check("impossible", "SELECT false")])


@pytest.mark.parametrize("step", ["forward", "backfill", "constraints", "post-validation"])
def test_a_failure_after_forward_restores_the_baseline(shop: Warehouse, step: str) -> None:
    before = state(shop)
    result = run_migrations(shop, [failing(step)], confirm=True, batch_size=100, pause_ms=0)

    assert not result.success
    message = cause_message(result)
    assert f"{step} failed" in message and "verified equal to the baseline" in message
    assert state(shop) == before
    [(_, status, batches, _, _)] = ledger(shop)
    assert status == "rolled_back"
    if step == "backfill":
        assert batches == 3  # customers 1-300 were committed before the batch holding 301


def test_a_failed_pre_check_refuses_before_anything_changes(shop: Warehouse) -> None:
    before = state(shop)
    result = run_migrations(shop, [failing("pre-checks")], confirm=True)
    assert not result.success and "pre-checks failed" in cause_message(result)
    assert state(shop) == before and ledger(shop) == []


def test_a_second_run_is_refused_while_the_lock_is_held(shop: Warehouse) -> None:
    with psycopg.connect(shop.conninfo(), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (LOCK_KEY,))
        with pytest.raises(dg.DagsterResourceFunctionError) as raised:
            run_migrations(shop, confirm=True, raise_on_error=True)
    assert isinstance(raised.value.__cause__, MigrationRefused)
    assert "another migration run holds the migration lock" in str(raised.value.__cause__)
    never_started = sql.SQL("SELECT to_regclass('platform.migration_ledger') IS NULL")
    assert fetch_all(shop, never_started) == [(True,)]


def test_an_applied_migration_whose_source_changed_is_refused(shop: Warehouse) -> None:
    assert run_migrations(shop, confirm=True, pause_ms=0).success
    edited = replace(TIER, source_sha256="0" * 64)
    result = run_migrations(shop, [edited], confirm=True)
    assert not result.success and "from a different source" in cause_message(result)


def test_a_ledger_ahead_of_the_code_is_refused(shop: Warehouse) -> None:
    assert run_migrations(shop, confirm=True, pause_ms=0).success
    result = run_migrations(shop, [], confirm=True)
    assert not result.success and "does not know" in cause_message(result)


def test_lock_timeout_fires_and_the_retry_succeeds_once_released(shop: Warehouse) -> None:
    """A reader holding a lock blocks ALTER TABLE: it times out, backs off, and gets through."""
    holder = psycopg.connect(shop.conninfo())
    holder.execute("LOCK TABLE crm.customers IN ACCESS SHARE MODE")
    release = threading.Timer(2.0, holder.rollback)
    release.start()
    started = time.monotonic()
    try:
        result = run_migrations(shop, confirm=True, lock_timeout_ms=200, pause_ms=0)
    finally:
        release.join()
        holder.close()
    assert result.success
    assert time.monotonic() - started >= 2.0  # it waited for the release, in short attempts


def test_application_writes_continue_during_the_backfill(shop: Warehouse) -> None:
    """Single-row updates keep committing while the backfill runs (SKIP LOCKED, short batches)."""
    done = threading.Event()
    committed: list[float] = []

    def application() -> None:
        with psycopg.connect(shop.conninfo(), autocommit=True) as conn:
            customer = 0
            while not done.is_set():
                customer = customer % CUSTOMERS + 1
                conn.execute("UPDATE crm.customers SET email = email WHERE id = %s", (customer,))
                committed.append(time.monotonic())
                time.sleep(0.002)

    writer = threading.Thread(target=application)
    writer.start()
    try:
        started = time.monotonic()
        result = run_migrations(shop, confirm=True, batch_size=25, pause_ms=50)
        finished = time.monotonic()
    finally:
        done.set()
        writer.join()
    assert result.success
    assert sum(started < t < finished for t in committed) > 20
    assert fetch_all(shop, sql.SQL("SELECT count(*) FROM crm.customers WHERE tier IS NULL")) == [
        (0,)
    ]


def guard_metadata(result: dg.ExecuteInProcessResult) -> dict:
    return next(
        e for e in result.all_events if e.step_key == "guard" and e.is_successful_output
    ).step_output_data.metadata


@pytest.mark.parametrize(
    ("statement", "rule"),
    [
        (
            "CREATE INDEX customers_tier_idx ON crm.customers (tier)",
            "require-concurrent-index-creation",
        ),
        ("ALTER TABLE crm.customers ALTER COLUMN tier TYPE varchar(12)", "changing-column-type"),
        ("ALTER TABLE crm.customers ADD COLUMN note text NOT NULL", "adding-required-field"),
        ("ALTER TABLE crm.customers DROP COLUMN email", "ban-drop-column"),
        ("SET lock_timeout = 0", "lock-timeout-disabled"),  # our own rule: squawk lacks it
    ],
    ids=["index", "type-change", "required-column", "undeclared-drop", "lock-timeout-off"],
)
def test_squawk_findings_show_in_the_dry_run_and_refuse_unless_acknowledged(
    shop: Warehouse, statement: str, rule: str
) -> None:
    risky = replace(TIER, forward=[*TIER.forward, statement])

    dry = run_migrations(shop, [risky])
    refused = run_migrations(shop, [risky], confirm=True)

    assert dry.success
    findings = guard_metadata(dry)["lint_findings"].value
    rules = {f["rule"] for f in findings}
    assert rule in rules and {f["statement"] for f in findings} == {statement}
    assert not refused.success and rule in cause_message(refused)
    assert ledger(shop) == []
    acknowledged = run_migrations(
        shop, [risky], confirm=True, pause_ms=0, ignore_lint_rules=sorted(rules)
    )
    # Acknowledged, it runs: a NOT NULL column without a default then fails on the filled table,
    # as squawk warned, and is rolled back.
    assert acknowledged.success == (rule != "adding-required-field")


def test_a_declared_destroyed_column_may_be_dropped(shop: Warehouse) -> None:
    """squawk's ban-drop-column is answered by declaring the column: it is backed up first."""
    dropping = replace(
        TIER,
        forward=[*TIER.forward, "ALTER TABLE crm.customers DROP COLUMN IF EXISTS email"],
        destroys_columns=["email"],
    )
    assert guard_metadata(run_migrations(shop, [dropping]))["lint_findings"].value == []


def test_killed_mid_backfill_resumes_without_redoing_batches(shop: Warehouse) -> None:
    """SIGKILL while batches run; the re-run continues after the last committed key."""
    killed_at = killed_after_batches(shop, "confirm=True, batch_size=25, pause_ms=200", 4)
    done = fetch_all(shop, sql.SQL("SELECT count(*) FROM crm.customers WHERE tier IS NOT NULL"))
    assert 4 <= killed_at < CUSTOMERS // 25 and done == [(killed_at * 25,)]

    result = run_migrations(shop, confirm=True, batch_size=25, pause_ms=0)

    assert result.success
    [(_, status, batches, rows, _)] = ledger(shop)
    assert (status, batches, rows) == ("applied", CUSTOMERS // 25, CUSTOMERS)
    baseline_output = next(
        e for e in result.all_events if e.step_key == "baseline" and e.is_successful_output
    ).step_output_data.metadata
    assert baseline_output["resumed_after"].value == {"last_key": killed_at * 25}
    assert baseline_output["batches_already_done"].value == killed_at


def test_a_connection_lost_mid_backfill_is_retried_and_resumed_in_the_same_run(
    shop: Warehouse,
) -> None:
    """The migration's session is terminated (a failover, an administrator) while batches run:
    no rollback, the step's retry takes the lock on a new connection and resumes after the last
    committed key, and the same run ends applied."""
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    run = threading.Thread(
        target=lambda: outcome.update(
            result=run_migrations(shop, confirm=True, batch_size=25, pause_ms=200)
        )
    )
    run.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and committed_batches(shop) < 4:
        time.sleep(0.05)
    with psycopg.connect(admin_conninfo(shop), autocommit=True) as admin:
        (terminated,) = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0)",
            (LOCK_KEY,),
        ).fetchone()
    assert terminated == 1
    run.join(timeout=300)

    result = outcome["result"]
    assert result.success
    retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == ["backfill"]
    [(_, status, batches, rows, _)] = ledger(shop)
    assert (status, batches, rows) == ("applied", CUSTOMERS // 25, CUSTOMERS)
    tiers = fetch_all(shop, sql.SQL("SELECT id, tier FROM crm.customers"))
    assert all(tier == expected_tier(customer_id) for customer_id, tier in tiers)


def killed_after_batches(
    warehouse: Warehouse, arguments: str, batches: int, setup: str = ""
) -> int:
    """Run the migrate job in a process of its own (``run_migrations(warehouse, <arguments>)``,
    after the import lines ``setup``), SIGKILL it once the ledger shows ``batches`` committed,
    and return how many it had committed by then."""
    script = "\n".join(
        [
            "import os",
            "from platform_assets.lib.warehouse.resource import Warehouse",
            "from platform_assets_tests.migrations.conftest import run_migrations",
            setup,
            "warehouse = Warehouse(database_url=os.environ['MIGRATION_TEST_URL'])",
            f"run_migrations(warehouse, {arguments})",
        ]
    )
    env = {**os.environ, "MIGRATION_TEST_URL": warehouse.conninfo()}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and committed_batches(warehouse) < batches:
            time.sleep(0.05)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return committed_batches(warehouse)


def committed_batches(warehouse: Warehouse) -> int:
    """Backfill batches the ledger shows committed (0 before the run has started)."""
    exists = sql.SQL("SELECT to_regclass('platform.migration_ledger') IS NOT NULL")
    if not fetch_all(warehouse, exists)[0][0]:
        return 0
    rows = fetch_all(warehouse, sql.SQL("SELECT backfill_batches FROM platform.migration_ledger"))
    return rows[0][0] if rows else 0


DROP_EMAIL = Migration(
    id="0002_drop_email",
    description="Drop customers.email (its data is backed up first).",
    schema="crm",
    table="customers",
    key="id",
    destroys_columns=["email"],
    forward=["ALTER TABLE crm.customers DROP COLUMN IF EXISTS email"],
    down=[
        "ALTER TABLE crm.customers ADD COLUMN IF NOT EXISTS email text",
        "UPDATE crm.customers AS c SET email = b.email"
        ' FROM migration_backup."0002_drop_email__customers" AS b WHERE b.id = c.id',
    ],
    source_sha256="test",
)


def test_destroyed_columns_are_backed_up_and_restored_by_the_rollback(shop: Warehouse) -> None:
    before = state(shop)
    failing_drop = replace(DROP_EMAIL, validate=[Check("impossible", "SELECT false")])
    result = run_migrations(shop, [failing_drop], confirm=True)
    assert "verified equal to the baseline" in cause_message(result)
    assert state(shop)["columns"][-1] == "email"  # restored columns come back last
    with shop.connection() as conn:
        restored = measure(conn, "crm", "customers", "id", before["columns"])
    assert restored["checksum"] == before["checksum"]
    assert restored["null_counts"] == before["null_counts"]

    assert run_migrations(shop, [DROP_EMAIL], confirm=True).success
    kept = fetch_all(
        shop,
        sql.SQL('SELECT count(*), count(email) FROM migration_backup."0002_drop_email__customers"'),
    )
    assert kept == [(CUSTOMERS, CUSTOMERS - CUSTOMERS // 5)]


def test_out_of_order_application_is_refused_unless_allowed(shop: Warehouse) -> None:
    later = replace(  # a later migration of the same chain (order is kept within a chain)
        DROP_EMAIL, id="0003_later", forward=[], down=[], destroys_columns=[], chain=TIER.chain
    )
    assert run_migrations(shop, [later], confirm=True).success
    both = [TIER, later]
    refused = run_migrations(shop, both, confirm=True)
    assert not refused.success and "out of order" in cause_message(refused)
    assert run_migrations(shop, both, confirm=True, allow_out_of_order=True, pause_ms=0).success
    statuses = sorted((m, s) for m, s, *_ in ledger(shop))
    assert statuses == [("0001_customer_tier", "applied"), ("0003_later", "applied")]


def test_a_rollback_that_fails_is_recorded_as_failed_not_resumable(shop: Warehouse) -> None:
    broken_down = replace(
        TIER,
        validate=[Check("impossible", "SELECT false")],
        down=["ALTER TABLE crm.customers DROP COLUMN no_such_column"],
    )
    result = run_migrations(shop, [broken_down], confirm=True, pause_ms=0)
    message = cause_message(result)
    assert "post-validation failed" in message and "ROLLBACK FAILED" in message
    [(_, status, _, _, _)] = ledger(shop)
    assert status == "failed"
