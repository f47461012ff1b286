"""Least privilege on the embedded server: each role does what its part needs and nothing more.

Runs load as the owner of the platform's tables, the migrate job connects as the migrator (who
acts as the owner), consumers read as the reader, and the Dagster instance database is its own
role's alone. Proven by trying, as each role, what it must not do."""

from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest
from psycopg import errors, sql
from sqlalchemy.engine import make_url

from platform_assets.defs.resources import migrator, warehouse
from platform_assets.lib import settings
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import (
    _roles_sql,
    embedded_admin_url,
    embedded_database_url,
)
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.test_table_source import CUSTOMERS, create_source, extract
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.sales.test_pipeline import ORDERS


def connect(role: str, database: str = settings.WAREHOUSE_DATABASE) -> psycopg.Connection:
    return psycopg.connect(embedded_database_url(database, role), autocommit=True)


@pytest.fixture
def probe(clean_warehouse: Warehouse) -> Iterator[Warehouse]:
    """A table made by a run, as runs make them (the owner), holding one row."""
    if clean_warehouse.database_url:
        pytest.fail("the role tests need the embedded server: unset PLATFORM_DATABASE_URL")
    with clean_warehouse.connection() as conn:
        conn.execute("CREATE SCHEMA io_test")
        conn.execute("CREATE TABLE io_test.roles_probe (id bigint PRIMARY KEY, note text)")
        conn.execute("INSERT INTO io_test.roles_probe VALUES (1, 'made by a run')")
    yield clean_warehouse


def refused(conn: psycopg.Connection, statement: str) -> bool:
    """Whether the server refuses ``statement`` for lack of privilege (nothing is changed)."""
    try:
        conn.execute(statement)
    except (errors.InsufficientPrivilege, errors.InvalidSchemaName) as error:
        return "permission denied" in str(error) or "must be owner" in str(error)
    return False


def test_runs_and_migrations_use_the_platform_roles_never_a_superuser(probe: Warehouse) -> None:
    assert warehouse.embedded_role == roles.OWNER and migrator.embedded_role == roles.MIGRATOR
    with probe.connection() as conn:
        assert conn.execute("SELECT session_user, current_user").fetchone() == (
            roles.OWNER,
            roles.OWNER,
        )
    owner = fetch_all(
        probe, sql.SQL("SELECT tableowner FROM pg_tables WHERE tablename = 'roles_probe'")
    )
    assert owner == [(roles.OWNER,)]
    with connect(roles.MIGRATOR) as conn:  # sessions name the migrator; it acts as the owner
        assert conn.execute("SELECT session_user, current_user").fetchone() == (
            roles.MIGRATOR,
            roles.OWNER,
        )
    with connect(roles.OWNER) as conn:
        special = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)"
            " AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication)",
            (list(roles.ROLES),),
        ).fetchall()
    assert special == []


def test_the_reader_reads_and_cannot_write(probe: Warehouse) -> None:
    with connect(roles.READER) as reader:
        assert reader.execute("SELECT note FROM io_test.roles_probe").fetchall() == [
            ("made by a run",)
        ]
        assert refused(reader, "INSERT INTO io_test.roles_probe VALUES (2, 'no')")
        assert refused(reader, "UPDATE io_test.roles_probe SET note = 'no'")
        assert refused(reader, "DELETE FROM io_test.roles_probe")
        assert refused(reader, "TRUNCATE io_test.roles_probe")
        assert refused(reader, "CREATE SCHEMA reader_own")
        assert refused(reader, "CREATE TABLE public.reader_own (id int)")
    assert fetch_all(probe, sql.SQL("SELECT count(*) FROM io_test.roles_probe")) == [(1,)]


@pytest.mark.parametrize("role", [roles.READER, roles.INSTANCE])
def test_no_role_but_the_owner_alters_or_drops_the_platform_tables(
    probe: Warehouse, role: str
) -> None:
    if role == roles.INSTANCE:  # it may not even connect to the warehouse
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            connect(role)
        return
    with connect(role) as conn:
        assert refused(conn, "ALTER TABLE io_test.roles_probe ADD COLUMN extra text")
        assert refused(conn, "DROP TABLE io_test.roles_probe")
        assert refused(conn, "DROP SCHEMA io_test CASCADE")
    with connect(roles.MIGRATOR) as conn:  # the migrator, as the owner, may
        conn.execute("ALTER TABLE io_test.roles_probe ADD COLUMN extra text")


@pytest.mark.parametrize("role", roles.ROLES)
def test_no_role_creates_roles_or_databases(probe: Warehouse, role: str) -> None:
    database = settings.DAGSTER_DATABASE if role == roles.INSTANCE else settings.WAREHOUSE_DATABASE
    with connect(role, database) as conn:
        assert refused(conn, "CREATE ROLE intruder LOGIN SUPERUSER")
        assert refused(conn, "CREATE DATABASE intruder")
        assert refused(conn, f"GRANT {roles.OWNER} TO {roles.READER}")


@pytest.mark.parametrize("role", [roles.OWNER, roles.MIGRATOR, roles.READER])
def test_only_its_own_role_reads_the_dagster_instance_database(role: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(role, settings.DAGSTER_DATABASE)
    with connect(roles.INSTANCE, settings.DAGSTER_DATABASE) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (roles.INSTANCE,)


def test_the_roles_sql_for_an_external_server_is_what_the_embedded_one_ran() -> None:
    script = _roles_sql("analytics", "dagster_meta")
    for role in roles.ROLES:
        assert f'CREATE ROLE "{role}" LOGIN' in script
    assert 'REVOKE ALL ON DATABASE "dagster_meta" FROM PUBLIC;' in script
    assert 'GRANT CONNECT, TEMPORARY, CREATE ON DATABASE "analytics" TO "platform_owner";' in script
    assert "\\connect dagster_meta" in script


def test_a_password_in_a_source_url_appears_nowhere(
    probe: Warehouse, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    create_source(probe)
    with_password = embedded_database_url(settings.WAREHOUSE_DATABASE, roles.OWNER)
    secret = make_url(with_password).password
    assert secret  # the embedded server asks every role for its password
    monkeypatch.setenv("PLATFORM_CRM_DATABASE_URL", with_password)
    result = extract(probe, CUSTOMERS)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["source_database"].value == "$PLATFORM_CRM_DATABASE_URL"
    events = str([event.event_specific_data for event in result.all_events])
    assert secret not in events and secret not in caplog.text


def test_authentication_holds_a_changed_user_name_or_no_password_is_refused(
    probe: Warehouse,
) -> None:
    """The attack of a process that reaches the socket: the owner's URL with the superuser's
    name, with no password, or with the owner's password for another role. None gets in."""
    owner = make_url(embedded_database_url(settings.WAREHOUSE_DATABASE, roles.OWNER))
    attempts = {
        "superuser, no password": owner.set(username="postgres", password=""),
        "superuser, the owner's password": owner.set(username="postgres"),
        "owner, no password": owner.set(password=""),
        "reader, the owner's password": owner.set(username=roles.READER),
    }
    for what, url in attempts.items():
        with pytest.raises(psycopg.OperationalError, match="password") as refusal:
            psycopg.connect(url.render_as_string(hide_password=False)).close()
        assert owner.password not in str(refusal.value), what
    with psycopg.connect(embedded_admin_url(settings.WAREHOUSE_DATABASE)) as conn:
        hba = conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules").fetchall()
    assert hba == [("scram-sha-256",)]
    secrets = settings.data_dir() / "secrets"
    assert {p.stat().st_mode & 0o777 for p in secrets.iterdir()} == {0o600}


def test_every_login_role_has_a_statement_timeout(probe: Warehouse) -> None:
    for role in roles.ROLES:
        database = settings.DAGSTER_DATABASE if role == roles.INSTANCE else None
        with connect(role, database or settings.WAREHOUSE_DATABASE) as conn:
            conn.execute("RESET statement_timeout")  # the role's own default, not a session's
            (timeout,) = conn.execute("SHOW statement_timeout").fetchone()
        assert timeout not in ("0", "0ms"), role


def test_the_reader_cannot_read_columns_tagged_pii(resources: dict, instance, landing_dir) -> None:
    """Loaded as runs load it, orders' customer_id (tagged pii) is not readable by the reader;
    every other column is, by name."""
    loaded = dg.materialize(
        [ORDERS], partition_key="2026-11-01", resources=resources, instance=instance
    )
    assert (
        loaded.success
        and dg.materialize(  # a second write changes no grant
            [ORDERS], partition_key="2026-11-01", resources=resources, instance=instance
        ).success
    )
    with connect(roles.READER) as reader:
        assert reader.execute("SELECT count(order_id) FROM sales.orders").fetchone()[0] > 0
        assert refused(reader, "SELECT customer_id FROM sales.orders")
        assert refused(reader, "SELECT * FROM sales.orders")
