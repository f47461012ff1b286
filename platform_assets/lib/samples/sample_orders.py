"""Seeded generator of realistic daily order landing files (``orders_YYYY-MM-DD.csv``).

Each day's file depends only on the seed and the date, so regenerating gives identical bytes and the
files can be recreated anywhere. About ``malformed_share`` of the rows are broken the way real
exports break (unparseable numbers and timestamps, missing ids, unknown codes, negative prices,
rows stamped with another day, duplicated order ids) so the cleaning step has something to reject.
"""

import csv
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

ORDER_COLUMNS = [
    "order_id",
    "customer_id",
    "order_date",
    "ordered_at",
    "status",
    "channel",
    "currency",
    "quantity",
    "unit_price",
    "discount",
]
STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled", "returned"]
STATUS_WEIGHTS = [10, 15, 20, 45, 6, 4]
CHANNELS = ["web", "mobile", "store", "partner"]
CURRENCIES = ["EUR", "USD", "GBP"]
CURRENCY_WEIGHTS = [55, 35, 10]
CUSTOMER_COUNT = 20_000


def orders_file_name(day: date) -> str:
    """The landing file name for ``day``."""
    return f"orders_{day.isoformat()}.csv"


def _good_row(rng: random.Random, day: date, order_id: int) -> dict[str, str]:
    seconds = rng.randrange(86_400)
    ordered_at = datetime.combine(day, time.min, tzinfo=UTC) + timedelta(seconds=seconds)
    quantity = rng.choices(range(1, 9), weights=[40, 25, 12, 8, 6, 4, 3, 2])[0]
    unit_price = round(rng.lognormvariate(3.2, 0.8), 2)
    discount = round(unit_price * quantity * rng.choice([0, 0, 0, 0.05, 0.1, 0.2]), 2)
    return {
        "order_id": str(order_id),
        "customer_id": str(rng.randint(1, CUSTOMER_COUNT)),
        "order_date": day.isoformat(),
        "ordered_at": ordered_at.isoformat(),
        "status": rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0],
        "channel": rng.choice(CHANNELS),
        "currency": rng.choices(CURRENCIES, weights=CURRENCY_WEIGHTS)[0],
        "quantity": str(quantity),
        "unit_price": f"{unit_price:.2f}",
        "discount": f"{discount:.2f}",
    }


def _break_row(rng: random.Random, row: dict[str, str], previous_id: str) -> dict[str, str]:
    """Damage one field the way a real export does."""
    damage = rng.choice(
        ["quantity", "price", "timestamp", "customer", "status", "currency", "date", "duplicate"]
    )
    if damage == "quantity":
        row["quantity"] = rng.choice(["two", "", "-3", "1.5"])
    elif damage == "price":
        row["unit_price"] = rng.choice(["-12.00", "12,50", "N/A"])
    elif damage == "timestamp":
        row["ordered_at"] = rng.choice(["2026-13-45T99:00:00", "yesterday", ""])
    elif damage == "customer":
        row["customer_id"] = ""
    elif damage == "status":
        row["status"] = rng.choice(["SHIPPED?", "unknown", ""])
    elif damage == "currency":
        row["currency"] = rng.choice(["EURO", "", "XXX"])
    elif damage == "date":
        row["order_date"] = (date.fromisoformat(row["order_date"]) - timedelta(days=1)).isoformat()
    else:
        row["order_id"] = previous_id
    return row


def generate_day(day: date, orders: int, seed: int, malformed_share: float) -> list[dict[str, str]]:
    """The landing rows for ``day``: ``orders`` rows, about ``malformed_share`` of them broken."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    count = max(1, round(orders * rng.uniform(0.8, 1.2)))
    first_id = day.toordinal() * 100_000
    rows: list[dict[str, str]] = []
    for index in range(count):
        row = _good_row(rng, day, first_id + index)
        if rows and rng.random() < malformed_share:
            row = _break_row(rng, row, rows[-1]["order_id"])
        rows.append(row)
    return rows


def write_day(directory: Path, day: date, orders: int, seed: int, malformed_share: float) -> Path:
    """Write ``day``'s landing file under ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / orders_file_name(day)
    temporary = path.with_suffix(".csv.partial")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=ORDER_COLUMNS)
        writer.writeheader()
        writer.writerows(generate_day(day, orders, seed, malformed_share))
    temporary.replace(path)  # readers never see a half-written file
    return path
