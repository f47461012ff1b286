"""Typing and validating raw order rows: pure pandas, tested without Dagster.

Every row read ends up in exactly one of the two frames returned, the rejected ones with every rule
they broke, so rows read = rows loaded + rows rejected always holds.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pandas as pd

from platform_assets.lib.landing.sample_orders import CHANNELS, CURRENCIES, STATUSES


@dataclass(frozen=True)
class CleanedOrders:
    """The typed orders that passed, and the raw rows that did not with their reasons."""

    orders: pd.DataFrame
    rejected: pd.DataFrame


def _integers(values: pd.Series) -> pd.Series:
    """Whole numbers as Int64; anything else (text, decimals, blanks) as NA."""
    numbers = pd.to_numeric(values.where(values.str.fullmatch(r"-?\d+"), None), errors="coerce")
    return numbers.astype("Int64")


def _amounts(values: pd.Series) -> pd.Series:
    """Plain decimal amounts (``12.50``) as floats for checks; anything else as NaN."""
    return pd.to_numeric(
        values.where(values.str.fullmatch(r"-?\d+(\.\d+)?"), None), errors="coerce"
    )


def clean_orders(raw: pd.DataFrame, day: date) -> CleanedOrders:
    """Type ``raw`` order rows landed for ``day`` and split them into good and rejected rows."""
    order_id = _integers(raw["order_id"])
    customer_id = _integers(raw["customer_id"])
    quantity = _integers(raw["quantity"])
    unit_price = _amounts(raw["unit_price"])
    discount = _amounts(raw["discount"])
    ordered_at = pd.to_datetime(raw["ordered_at"], utc=True, errors="coerce", format="ISO8601")
    order_date = pd.to_datetime(raw["order_date"], errors="coerce", format="%Y-%m-%d").dt.date

    failures = {
        "order_id is not an integer": order_id.isna(),
        "order_id repeats an earlier row": order_id.notna() & order_id.duplicated(keep="first"),
        "customer_id is not an integer": customer_id.isna(),
        "order_date is not the landing day": order_date != day,
        "ordered_at is not an ISO timestamp": ordered_at.isna(),
        "status is unknown": ~raw["status"].isin(STATUSES),
        "channel is unknown": ~raw["channel"].isin(CHANNELS),
        "currency is unknown": ~raw["currency"].isin(CURRENCIES),
        "quantity is not a positive integer": quantity.isna() | (quantity < 1).fillna(True),
        "unit_price is not a non-negative amount": unit_price.isna() | (unit_price < 0),
        "discount is not between 0 and the line total": discount.isna()
        | (discount < 0)
        | (discount > unit_price * quantity.astype("float64")),
    }
    reasons = pd.Series([[] for _ in range(len(raw))], index=raw.index, dtype=object)
    for reason, failed in failures.items():
        for index in failed[failed.fillna(True).astype(bool)].index:
            reasons[index].append(reason)
    rejected_mask = reasons.map(bool)

    good = ~rejected_mask
    unit_price_exact = pd.Series([Decimal(v) for v in raw.loc[good, "unit_price"]], dtype=object)
    discount_exact = pd.Series([Decimal(v) for v in raw.loc[good, "discount"]], dtype=object)
    amount = pd.Series(
        [
            price * int(count) - cut
            for price, count, cut in zip(
                unit_price_exact, quantity[good], discount_exact, strict=True
            )
        ],
        dtype=object,
    )
    orders = pd.DataFrame(
        {
            "order_id": order_id[good],
            "customer_id": customer_id[good],
            "order_date": order_date[good],
            "ordered_at": ordered_at[good],
            "status": raw.loc[good, "status"],
            "channel": raw.loc[good, "channel"],
            "currency": raw.loc[good, "currency"],
            "quantity": quantity[good],
        }
    ).reset_index(drop=True)
    orders["unit_price"] = unit_price_exact
    orders["discount"] = discount_exact
    orders["amount"] = amount
    rejected = raw[rejected_mask].assign(reasons=reasons[rejected_mask].map("; ".join))
    return CleanedOrders(orders=orders, rejected=rejected.reset_index(drop=True))
