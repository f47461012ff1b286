"""The CRM extract's checks pass on a true extract and fail on a damaged one."""

import dagster as dg
from psycopg import sql

from platform_assets.defs.crm.assets import customers
from platform_assets.defs.crm.checks import checkpoint_not_ahead, customer_ids_unique
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.crm.test_incremental_extract import NOW, source  # noqa: F401
from platform_assets_tests.helpers import check_evaluation


def extract_and_check(warehouse: Warehouse) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [customers, customer_ids_unique, checkpoint_not_ahead],
        resources={"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)},
        run_config=NOW,
        raise_on_error=False,
    )


def run_checks(warehouse: Warehouse) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [customers, customer_ids_unique, checkpoint_not_ahead],
        selection=dg.AssetSelection.checks_for_assets(customers),
        resources={"warehouse": warehouse, "io_manager": PostgresIOManager(warehouse=warehouse)},
        raise_on_error=False,
    )


def test_a_true_extract_passes_both_checks(source: Warehouse) -> None:  # noqa: F811
    result = extract_and_check(source)
    assert result.success
    assert check_evaluation(result, "customer_ids_unique").passed
    assert check_evaluation(result, "checkpoint_not_ahead").passed


def test_a_checkpoint_past_the_staged_rows_fails(source: Warehouse) -> None:  # noqa: F811
    assert extract_and_check(source).success
    with source.connection() as conn:  # the newest staged rows vanish behind the extract's back
        conn.execute("DELETE FROM staging.customers WHERE id > 40")
    checked = check_evaluation(run_checks(source), "checkpoint_not_ahead")
    assert not checked.passed and checked.description == "no staged row reaches the mark"


def test_a_repeated_customer_id_fails(source: Warehouse) -> None:  # noqa: F811
    assert extract_and_check(source).success
    with source.connection() as conn:  # a table damaged outside the platform: no key any more
        conn.execute(
            sql.SQL("ALTER TABLE staging.customers DROP CONSTRAINT {}").format(
                sql.Identifier("customers_pkey")
            )
        )
        conn.execute("INSERT INTO staging.customers SELECT * FROM staging.customers WHERE id = 7")
    checked = check_evaluation(run_checks(source), "customer_ids_unique")
    assert not checked.passed and checked.metadata["repeated_key_rows"].value == 2
