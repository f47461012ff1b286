"""Add ``crm.customers.tier`` from order history: platinum ≥ 100 orders, gold ≥ 50, silver ≥ 10."""

from platform_assets.lib.migrations.model import BatchedUpdate, Check, Migration
from platform_assets.lib.migrations.patterns import REDUNDANT_NOT_NULL_CHECK

TIERS = ("bronze", "silver", "gold", "platinum")

MIGRATION = Migration(
    id="0001_customer_tier",
    description="Add customers.tier, backfilled from order counts, checked to the four tiers.",
    schema="crm",
    table="customers",
    key="id",
    pre_checks=[
        Check("crm.customers exists", "SELECT to_regclass('crm.customers') IS NOT NULL"),
        Check("sales.orders exists", "SELECT to_regclass('sales.orders') IS NOT NULL"),
        Check("crm.customers is not empty", "SELECT EXISTS (SELECT 1 FROM crm.customers)"),
    ],
    forward=[
        # Nullable, no default: a catalog-only change, no table rewrite.
        "ALTER TABLE crm.customers ADD COLUMN IF NOT EXISTS tier text",
        # New customers get the default from now on; existing rows are backfilled below.
        "ALTER TABLE crm.customers ALTER COLUMN tier SET DEFAULT 'bronze'",
    ],
    backfill=BatchedUpdate(
        statement="""
            WITH batch AS (
                SELECT id FROM crm.customers
                WHERE id > %(after)s AND tier IS NULL
                ORDER BY id LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), order_counts AS (
                SELECT o.customer_id, count(*) AS orders
                FROM sales.orders o JOIN batch ON o.customer_id = batch.id
                GROUP BY o.customer_id
            )
            UPDATE crm.customers AS c
            SET tier = CASE
                WHEN order_counts.orders >= 100 THEN 'platinum'
                WHEN order_counts.orders >= 50 THEN 'gold'
                WHEN order_counts.orders >= 10 THEN 'silver'
                ELSE 'bronze'
            END
            FROM batch LEFT JOIN order_counts ON order_counts.customer_id = batch.id
            WHERE c.id = batch.id
            RETURNING c.id
        """,
        remaining="SELECT count(*) FROM crm.customers WHERE tier IS NULL",
    ),
    constraints=[
        "ALTER TABLE crm.customers ADD CONSTRAINT customers_tier_check"
        " CHECK (tier IN ('bronze', 'silver', 'gold', 'platinum')) NOT VALID",
        "ALTER TABLE crm.customers VALIDATE CONSTRAINT customers_tier_check",
        # NOT NULL without a long exclusive scan: a validated CHECK lets SET NOT NULL skip it.
        "ALTER TABLE crm.customers ADD CONSTRAINT customers_tier_not_null"
        " CHECK (tier IS NOT NULL) NOT VALID",
        "ALTER TABLE crm.customers VALIDATE CONSTRAINT customers_tier_not_null",
        "ALTER TABLE crm.customers ALTER COLUMN tier SET NOT NULL",
        REDUNDANT_NOT_NULL_CHECK
        + "ALTER TABLE crm.customers DROP CONSTRAINT customers_tier_not_null",
    ],
    validate=[
        Check(
            "no customer lacks a tier",
            "SELECT NOT EXISTS (SELECT 1 FROM crm.customers WHERE tier IS NULL)",
        ),
        Check(
            "every tier matches the customer's order count",
            """
            SELECT NOT EXISTS (
                SELECT 1 FROM crm.customers c
                LEFT JOIN (SELECT customer_id, count(*) AS orders FROM sales.orders GROUP BY 1) o
                    ON o.customer_id = c.id
                WHERE c.tier <> CASE
                    WHEN o.orders >= 100 THEN 'platinum' WHEN o.orders >= 50 THEN 'gold'
                    WHEN o.orders >= 10 THEN 'silver' ELSE 'bronze' END
            )
            """,
        ),
    ],
    down=[
        "ALTER TABLE crm.customers DROP CONSTRAINT IF EXISTS customers_tier_not_null",
        "ALTER TABLE crm.customers DROP CONSTRAINT IF EXISTS customers_tier_check",
        "ALTER TABLE crm.customers DROP COLUMN IF EXISTS tier",
    ],
)
