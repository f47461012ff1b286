"""Migration chains: a deployment of its own datasets never runs the sample's migration, runs its
own from its own package, and the ledger keeps the chains apart. The job runs for real."""

import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.migrations.jobs import migrate_job, migration_resources
from platform_assets.lib.migrations.chains import (
    PROJECT_CHAIN,
    SAMPLE_CHAIN,
    MigrationChain,
    chained_migrations,
)
from platform_assets.lib.migrations.ledger import (
    LedgerEntry,
    MigrationRefused,
    ensure_ledger,
    next_migration,
)
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.migrations.model import Migration
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.migrations.conftest import SAMPLE_MIGRATIONS, as_migrator
from platform_assets_tests.migrations.test_migration_job import guard_metadata
from platform_assets_tests.migrations.test_spec_migrations import DECIMAL, WHOLE, load

OWN_MIGRATION = """
from platform_assets.lib.migrations.model import Check, Migration

MIGRATION = Migration(
    id="0001_reading_note",
    description="Add readings.note.",
    schema="io_test",
    table="readings",
    key="reading_id",
    forward=["ALTER TABLE io_test.readings ADD COLUMN IF NOT EXISTS note text"],
    validate=[Check("note exists", "SELECT count(*) = 1 FROM information_schema.columns"
                    " WHERE table_name = 'readings' AND column_name = 'note'")],
    down=["ALTER TABLE io_test.readings DROP COLUMN IF EXISTS note"],
)
"""


@pytest.fixture
def own_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationChain:
    """A project's own chain: a package of its own with one migration, as a user writes it."""
    package = tmp_path / "own_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "m0001_reading_note.py").write_text(textwrap.dedent(OWN_MIGRATION))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield MigrationChain("project", "own_migrations")
    sys.modules.pop("own_migrations.m0001_reading_note", None)
    sys.modules.pop("own_migrations", None)


def run_chains(
    warehouse: Warehouse, chains: tuple[MigrationChain, ...], **config: object
) -> dg.ExecuteInProcessResult:
    """The migrate job as a deployment declaring only the readings dataset runs it."""
    resources = migration_resources(dataset_specs=[DECIMAL])
    resources["migrations"] = dg.ResourceDefinition.hardcoded_resource(
        chained_migrations([DECIMAL.name], chains)
    )
    return migrate_job.execute_in_process(
        run_config={"ops": {"guard": {"config": config}}},
        resources={"migration_lock": MigrationLock(warehouse=as_migrator(warehouse)), **resources},
        raise_on_error=False,
    )


def test_the_sample_s_chain_applies_only_where_its_datasets_are_declared() -> None:
    sample_only = chained_migrations(["customers", "orders", "readings"])
    assert [m.id for m in sample_only.applicable] == ["0001_customer_tier"]
    assert sample_only.applicable[0].chain == SAMPLE_CHAIN.name
    own = chained_migrations(["orders", "readings"])
    assert own.applicable == []
    assert "needs the datasets ['customers']" in own.not_applicable["0001_customer_tier"]
    assert own.known_ids == {"0001_customer_tier"}


def test_an_id_in_two_chains_is_refused(own_chain: MigrationChain) -> None:
    twin = MigrationChain("other", own_chain.package)
    with pytest.raises(ValueError, match="0001_reading_note is in both the project and the other"):
        chained_migrations([], (own_chain, twin))


def entry(migration: Migration, status: str) -> LedgerEntry:
    return LedgerEntry(migration.id, migration.source_sha256, status, None, None, None, 0, 0, [])


def test_order_is_kept_within_a_chain_not_across_chains() -> None:
    (tier,) = SAMPLE_MIGRATIONS
    own_first = Migration("0000_own", "", "s", "t", "k", [], [], chain=PROJECT_CHAIN.name)
    own_later = Migration("0005_own", "", "s", "t", "k", [], [], chain=PROJECT_CHAIN.name)
    applied = {tier.id: entry(tier, "applied")}
    # The project's 0000 is not out of order because the sample applied 0001.
    assert next_migration([tier, own_first], applied, False) == own_first
    applied[own_later.id] = entry(own_later, "applied")
    with pytest.raises(MigrationRefused, match="0000_own would apply out of order"):
        next_migration([tier, own_first, own_later], applied, False)


def test_a_deployment_of_its_own_datasets_runs_its_own_chain_and_its_spec_changes(
    readings: dict, own_chain: MigrationChain
) -> None:
    warehouse = readings["warehouse"]
    assert load(WHOLE, readings).success
    (tier,) = SAMPLE_MIGRATIONS
    with warehouse.connection() as conn:
        # A warehouse without the sample's tables, which once had the sample: its applied
        # migration stays in the ledger.
        conn.execute("DROP SCHEMA IF EXISTS crm CASCADE")
        conn.execute("DROP TABLE IF EXISTS platform.migration_ledger")
        ensure_ledger(conn)
        conn.execute(
            "INSERT INTO platform.migration_ledger (migration_id, description, source_sha256,"
            " status, applied_by, run_id) VALUES (%s, '', %s, 'applied', 'test', 'earlier')",
            (tier.id, tier.source_sha256),
        )
    chains = (SAMPLE_CHAIN, own_chain)

    dry = run_chains(warehouse, chains)
    assert dry.success
    shown = guard_metadata(dry)
    assert shown["migration"].value == "0001_reading_note"  # its own chain first
    assert "needs the datasets" in shown["not_applicable_here"].value["0001_customer_tier"]
    (planned,) = shown["planned_from_specs"].value  # and its spec's change, planned
    assert "value from bigint to numeric(10,2)" in planned["description"]

    assert run_chains(warehouse, chains, confirm=True).success
    assert guard_metadata(run_chains(warehouse, chains))["migration"].value.startswith(
        "spec_readings_"
    )
    assert run_chains(warehouse, chains, confirm=True).success
    ledger = fetch_all(
        warehouse,
        sql.SQL("SELECT migration_id, chain, status FROM platform.migration_ledger ORDER BY 1"),
    )
    assert [(m, c) for m, c, _ in ledger][:2] == [
        ("0001_customer_tier", None),  # recorded before chains were
        ("0001_reading_note", "project"),
    ]
    assert ledger[2][0].startswith("spec_readings_") and ledger[2][1:] == ("spec", "applied")
    assert {status for _, _, status in ledger} == {"applied"}
