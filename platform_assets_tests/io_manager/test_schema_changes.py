"""A declared schema that differs from the existing table: safe widenings are applied and logged,
anything that would alter a value (a smaller scale rounds) or a changed key or partition column is
refused naming the column and the migration; a value is never changed on its way in."""

from datetime import date

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.io_manager.test_io_manager import partitioned_asset, run
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY, NEXT_DAY = SAMPLE_DAYS[0], SAMPLE_DAYS[1]


def load(day: date, resources: dict, instance: dg.DagsterInstance):
    return dg.materialize(
        [ORDERS],
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def alter(warehouse: Warehouse, column: str, pg_type: str) -> None:
    with warehouse.connection() as conn:
        conn.execute(
            sql.SQL("ALTER TABLE sales.orders ALTER COLUMN {} TYPE {}").format(
                sql.Identifier(column), sql.SQL(pg_type)
            )
        )


def column_type(warehouse: Warehouse, column: str) -> str:
    query = sql.SQL(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'sales.orders'::regclass AND attname = %s"
    )
    return fetch_all(warehouse, query, (column,))[0][0]


def test_a_smaller_scale_in_the_table_is_refused_never_rounded(resources, instance) -> None:
    warehouse = resources["warehouse"]
    assert load(DAY, resources, instance).success
    alter(warehouse, "unit_price", "numeric(11,1)")  # the spec says numeric(12,2)
    before = fetch_all(warehouse, sql.SQL("SELECT count(*) FROM sales.orders"))

    result = load(NEXT_DAY, resources, instance)

    assert not result.success
    message = result.failure_data_for_node("sales__orders").error.to_string()
    assert "column 'unit_price' is numeric(11,1) in the table but numeric(12,2)" in message
    assert "needs a migration that changes the column's type to numeric(12,2)" in message
    assert fetch_all(warehouse, sql.SQL("SELECT count(*) FROM sales.orders")) == before


@pytest.mark.parametrize(
    ("column", "narrower", "wider"),
    [
        ("unit_price", "numeric(10,2)", "numeric(12,2)"),  # more digits at the same scale
        ("quantity", "integer", "bigint"),
        ("status", "character varying(12)", "text"),
    ],
)
def test_a_safe_widening_is_applied_and_logged(
    resources, instance, column: str, narrower: str, wider: str
) -> None:
    warehouse = resources["warehouse"]
    assert load(DAY, resources, instance).success
    alter(warehouse, column, narrower)

    result = load(NEXT_DAY, resources, instance)

    assert result.success and column_type(warehouse, column) == wider
    logged = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "columns_widened" in entry.user_message
    ]
    assert len(logged) == 1 and f"'{column}': '{wider}'" in logged[0]


def test_a_changed_primary_key_or_partition_column_is_refused(clean_warehouse) -> None:
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager

    resources = {"io_manager": PostgresIOManager(warehouse=clean_warehouse)}

    def frame(day: date) -> pd.DataFrame:
        return pd.DataFrame({"id": [1, 2], "line": [1, 1], "day": [day, day], "other": [day, day]})

    assert run([partitioned_asset(frame, "keyed", "day", primary_key=["id"])], resources).success

    rekeyed = partitioned_asset(frame, "keyed", "day", primary_key=["id", "line"])
    result = run([rekeyed], resources, raise_on_error=False)
    message = result.failure_data_for_node("io_test__keyed").error.to_string()
    assert "has primary key ['id'] but primary_key ['id', 'line'] is declared" in message

    moved = partitioned_asset(frame, "keyed", "other", primary_key=["id"])
    result = run([moved], resources, raise_on_error=False)
    message = result.failure_data_for_node("io_test__keyed").error.to_string()
    assert "is partitioned by ['day'] but partition column(s) ['other']" in message
