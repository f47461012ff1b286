"""Typing and validation of raw order rows, without Dagster or Postgres."""

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from platform_assets.defs.sales.cleaning import clean_orders
from platform_assets.lib.landing.sample_orders import ORDER_COLUMNS

DAY = date(2026, 11, 1)
GOOD = {
    "order_id": "100",
    "customer_id": "7",
    "order_date": "2026-11-01",
    "ordered_at": "2026-11-01T10:00:00+00:00",
    "status": "delivered",
    "channel": "web",
    "currency": "EUR",
    "quantity": "3",
    "unit_price": "19.99",
    "discount": "0.97",
}


def raw(*rows: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=ORDER_COLUMNS, dtype="str")
    frame["_source_line"] = range(2, len(frame) + 2)
    return frame


def test_good_row_is_typed_with_exact_amounts() -> None:
    cleaned = clean_orders(raw(GOOD), DAY)
    assert cleaned.rejected.empty
    row = cleaned.orders.iloc[0]
    assert row["order_id"] == 100 and row["order_date"] == DAY
    assert row["ordered_at"] == pd.Timestamp("2026-11-01T10:00:00Z")
    assert row["amount"] == Decimal("19.99") * 3 - Decimal("0.97")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("order_id", "x1", "order_id is not an integer"),
        ("customer_id", "", "customer_id is not an integer"),
        ("order_date", "2026-10-31", "order_date is not the landing day"),
        ("ordered_at", "2026-13-45T99:00:00", "ordered_at is not an ISO timestamp"),
        ("status", "SHIPPED?", "status is unknown"),
        ("channel", "fax", "channel is unknown"),
        ("currency", "EURO", "currency is unknown"),
        ("quantity", "1.5", "quantity is not a positive integer"),
        ("quantity", "0", "quantity is not a positive integer"),
        ("unit_price", "12,50", "unit_price is not a non-negative amount"),
        ("unit_price", "-1.00", "unit_price is not a non-negative amount"),
        ("discount", "100.00", "discount is not between 0 and the line total"),
    ],
)
def test_each_rule_rejects_with_its_reason(field: str, value: str, reason: str) -> None:
    cleaned = clean_orders(raw(GOOD, {**GOOD, "order_id": "101", field: value}), DAY)
    assert len(cleaned.orders) + len(cleaned.rejected) == 2
    assert len(cleaned.rejected) == 1
    assert reason in cleaned.rejected.loc[0, "reasons"]
    assert cleaned.rejected.loc[0, "_source_line"] == 3


def test_duplicate_order_id_keeps_the_first() -> None:
    cleaned = clean_orders(raw(GOOD, {**GOOD, "customer_id": "8"}), DAY)
    assert cleaned.orders["customer_id"].tolist() == [7]
    assert cleaned.rejected.loc[0, "reasons"] == "order_id repeats an earlier row"


def test_every_broken_rule_is_listed() -> None:
    cleaned = clean_orders(raw({**GOOD, "status": "?", "currency": "?"}), DAY)
    assert cleaned.rejected.loc[0, "reasons"] == "status is unknown; currency is unknown"


def test_header_only_file_gives_empty_frames() -> None:
    cleaned = clean_orders(raw(), DAY)
    assert cleaned.orders.empty and cleaned.rejected.empty
