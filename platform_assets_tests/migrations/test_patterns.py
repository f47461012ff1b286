"""The safe-pattern builders, applied (and rolled back) through the real guarded job."""

from dataclasses import replace

import psycopg
from psycopg import sql

from platform_assets.lib.migrations.execution import Timeouts
from platform_assets.lib.migrations.lint import lint, postgres_version
from platform_assets.lib.migrations.model import Check
from platform_assets.lib.migrations.patterns import (
    add_column,
    batched_update,
    change_column_type,
    drop_column,
    rename_column,
)
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import CUSTOMERS, run_migrations

TABLE = {"schema": "crm", "table": "customers", "key": "id"}
NEVER = Check("planted failure", "SELECT false")


def server_version(warehouse: Warehouse) -> str:
    """The server's version as squawk's ``--pg-version``."""
    with warehouse.connection() as conn:
        return postgres_version(conn.info.server_version)


def columns(warehouse: Warehouse) -> dict[str, str]:
    return dict(
        fetch_all(
            warehouse,
            sql.SQL(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'crm' AND table_name = 'customers'"
            ),
        )
    )


def rows(warehouse: Warehouse, query: str) -> list[tuple]:
    return fetch_all(warehouse, sql.SQL(query))


def apply(warehouse: Warehouse, migration, **config) -> None:
    result = run_migrations(
        warehouse, [migration], confirm=True, pause_ms=0, batch_size=64, **config
    )
    assert result.success


def test_add_column_backfills_and_constrains(shop: Warehouse) -> None:
    migration = add_column(
        id="0100_segment",
        description="Add customers.segment from the id's parity.",
        **TABLE,
        column="segment",
        pg_type="text",
        value="CASE WHEN mod(t.id, 2) = 0 THEN 'even' ELSE 'odd' END",
        default="odd",
        allowed=["even", "odd"],
    )
    assert lint(migration, Timeouts(), server_version(shop)) == []
    apply(shop, migration)
    assert rows(shop, "SELECT segment, count(*) FROM crm.customers GROUP BY 1 ORDER BY 1") == [
        ("even", CUSTOMERS // 2),
        ("odd", CUSTOMERS // 2),
    ]
    with shop.connection() as conn:
        try:
            conn.execute("UPDATE crm.customers SET segment = NULL WHERE id = 1")
            raise AssertionError("NULL was accepted")
        except psycopg.errors.NotNullViolation:
            pass


def test_batched_update_is_undone_from_its_backup(shop: Warehouse) -> None:
    before = rows(shop, "SELECT id, email FROM crm.customers ORDER BY id")
    update = batched_update(
        id="0101_upper_email",
        description="Upper-case e-mail addresses.",
        **TABLE,
        column="email",
        value="upper(t.email)",
        where="t.email IS NOT NULL AND t.email <> upper(t.email)",
    )
    failed = run_migrations(shop, [replace(update, validate=[NEVER])], confirm=True, pause_ms=0)
    assert not failed.success
    assert rows(shop, "SELECT id, email FROM crm.customers ORDER BY id") == before

    apply(shop, update)
    assert rows(shop, "SELECT count(*) FROM crm.customers WHERE email <> upper(email)") == [(0,)]


def test_change_column_type_swaps_and_its_rollback_swaps_back(shop: Warehouse) -> None:
    before = rows(shop, "SELECT id, score FROM crm.customers ORDER BY id")
    retype = change_column_type(
        id="0102_score_bigint",
        description="Store customers.score as a bigint.",
        **TABLE,
        column="score",
        new_type="bigint",
    )
    assert lint(retype, Timeouts(), server_version(shop)) == []
    failed = run_migrations(shop, [replace(retype, validate=[NEVER])], confirm=True, pause_ms=0)
    assert not failed.success
    assert columns(shop)["score"] == "text" and "score__new" not in columns(shop)
    assert rows(shop, "SELECT id, score FROM crm.customers ORDER BY id") == before

    apply(shop, retype)
    assert columns(shop)["score"] == "bigint" and columns(shop)["score__old"] == "text"
    assert rows(shop, "SELECT id, score::text FROM crm.customers ORDER BY id") == before


def test_rename_expands_with_a_sync_trigger_then_contracts(shop: Warehouse) -> None:
    expand = rename_column(
        id="0103_contact_email",
        description="Rename email to contact_email (expand).",
        **TABLE,
        column="email",
        new_name="contact_email",
        pg_type="text",
    )
    apply(shop, expand)
    assert rows(
        shop, "SELECT count(*) FROM crm.customers WHERE contact_email IS DISTINCT FROM email"
    ) == [(0,)]
    with shop.connection() as conn:  # the application still writes the old name
        conn.execute("UPDATE crm.customers SET email = 'new@example.com' WHERE id = 1")
    assert rows(shop, "SELECT contact_email FROM crm.customers WHERE id = 1") == [
        ("new@example.com",)
    ]

    contract = drop_column(
        id="0104_drop_email",
        description="Drop email now that contact_email is used (contract).",
        **TABLE,
        column="email",
        pg_type="text",
        sync_trigger_of="contact_email",
    )
    assert lint(contract, Timeouts(), server_version(shop)) == []
    result = run_migrations(shop, [expand, contract], confirm=True, pause_ms=0)
    assert result.success
    assert "email" not in columns(shop) and "contact_email" in columns(shop)
    kept = rows(shop, 'SELECT count(email) FROM migration_backup."0104_drop_email__customers"')
    assert kept == [(CUSTOMERS - CUSTOMERS // 5,)]
