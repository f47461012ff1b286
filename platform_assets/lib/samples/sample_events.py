"""Seeded generator of the web shop's daily analytics exports (``shop_events_YYYY-MM-DD.parquet``).

A day is a Berlin day, so its events run from 23:00 or 22:00 UTC the evening before. Each file
depends only on the seed and the date. About ``duplicate_share`` of the events are delivered twice
(the same row again, as an at-least-once pipeline does) and about ``malformed_share`` are broken
(an unknown event type, a customer id of 0), so the dedupe key and the rules have work to do.
"""

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from platform_assets.lib.samples.sample_orders import CUSTOMER_COUNT

BERLIN = ZoneInfo("Europe/Berlin")
EVENT_TYPES = ["page_view", "add_to_cart", "checkout", "purchase"]
EVENT_WEIGHTS = [80, 12, 5, 3]
PAGES = ["/", "/search", "/category/shoes", "/category/bags", "/product/{n}", "/cart", "/checkout"]
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("event_type", pa.string()),
        ("customer_id", pa.int64()),
        ("page", pa.string()),
        ("revenue", pa.decimal128(12, 2)),
    ]
)


def events_file_name(day: date) -> str:
    """The landing file name for the Berlin day ``day``."""
    return f"shop_events_{day.isoformat()}.parquet"


def generate_events_day(
    day: date, events: int, seed: int, duplicate_share: float, malformed_share: float
) -> list[dict]:
    """The rows of ``day``'s export, duplicates and broken rows included, in time order."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    start = datetime.combine(day, time.min, tzinfo=BERLIN)
    seconds = int(
        (datetime.combine(day + timedelta(days=1), time.min, tzinfo=BERLIN) - start).total_seconds()
    )
    rows = []
    for _ in range(events):
        event_type = rng.choices(EVENT_TYPES, weights=EVENT_WEIGHTS)[0]
        signed_in = rng.random() < 0.6
        row = {
            "event_id": f"{rng.getrandbits(128):032x}",
            "occurred_at": start + timedelta(seconds=rng.randrange(seconds)),
            "event_type": event_type,
            "customer_id": rng.randint(1, CUSTOMER_COUNT) if signed_in else None,
            "page": rng.choice(PAGES).format(n=rng.randint(1, 5000)),
            "revenue": (
                Decimal(f"{rng.lognormvariate(3.5, 0.7):.2f}") if event_type == "purchase" else None
            ),
        }
        if rng.random() < malformed_share:
            broken = rng.choice(["event_type", "customer_id"])
            row[broken] = "unknown" if broken == "event_type" else 0
        rows.append(row)
        if rng.random() < duplicate_share:
            rows.append(dict(row))
    rows.sort(key=lambda row: row["occurred_at"])
    return rows


def write_events_day(
    directory: Path,
    day: date,
    events: int,
    seed: int,
    duplicate_share: float = 0.01,
    malformed_share: float = 0.005,
) -> Path:
    """Write ``day``'s export under ``directory`` (atomically) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / events_file_name(day)
    rows = generate_events_day(day, events, seed, duplicate_share, malformed_share)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    temporary = path.with_suffix(".parquet.partial")
    pq.write_table(table, temporary)
    temporary.replace(path)  # readers never see a half-written file
    return path
