"""A paged JSON API as a dataset source, against a real HTTP server on localhost."""

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
import requests
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.http_json import SourceUnavailableError, retry_after_s
from platform_assets.lib.warehouse.transient import is_transient
from platform_assets_tests.helpers import fetch_all

DAY = "2026-11-10"


def order(order_id: int, quantity: object = 1) -> dict:
    return {"order_id": order_id, "order_date": DAY, "quantity": quantity, "status": "paid"}


PAGES = {
    f"/orders?date={DAY}": {
        "data": {"records": [order(1), order(2, quantity="2"), "not an object", order(3)]},
        "next": f"/orders?date={DAY}&page=2",
    },
    f"/orders?date={DAY}&page=2": {
        "data": {"records": [order(4, quantity="two"), order(5)]},
        "next": None,
    },
}


# JSON numbers a binary float cannot hold exactly, as the API writes them (raw text).
EXACT_PAGE = (
    '{"data": {"records": ['
    '{"order_id": 1, "order_date": "DAY", "amount": 1234567890123.4567,'
    ' "detail": {"unit_price": 0.30000000000000000001, "tags": [1e2]}},'
    '{"order_id": 2, "order_date": "DAY", "amount": 1e2, "detail": null},'
    '{"order_id": 3, "order_date": "DAY", "amount": 0.1, "detail": {"unit_price": -0}}'
    ']}, "next": null}'
).replace("DAY", DAY)


class OrdersApi(BaseHTTPRequestHandler):
    """Two pages of orders, the second answering 503 the first time it is asked for; and one
    page of amounts written with more digits than a float holds."""

    hits: Counter = Counter()
    asked_at: list[float] = []

    def do_GET(self) -> None:
        OrdersApi.hits[self.path] += 1
        if self.path == f"/busy?date={DAY}":  # too many requests: come back in a second
            OrdersApi.asked_at.append(time.monotonic())
            if OrdersApi.hits[self.path] == 1:
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.end_headers()
                return
            self.path = f"/orders?date={DAY}"  # then the orders' pages
        if self.path == f"/exact?date={DAY}":
            self.send_json(EXACT_PAGE.encode())
            return
        page = PAGES.get(self.path)
        if self.path.endswith("page=2") and OrdersApi.hits[self.path] == 1:
            self.send_response(503)
            self.end_headers()
            return
        if page is None:
            self.send_error(404, "no such page")
            return
        self.send_json(json.dumps(page).encode())

    def send_json(self, body: bytes) -> None:
        """Answer 200 with ``body`` as JSON."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on hits instead."""


@pytest.fixture
def api() -> Iterator[str]:
    """The API's base URL, served from a thread for the test's duration."""
    OrdersApi.hits.clear()
    OrdersApi.asked_at.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), OrdersApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


ORDER_COLUMNS = [
    {"name": "order_id", "type": "integer", "required": True},
    {"name": "order_date", "type": "date", "required": True},
    {"name": "quantity", "type": "integer", "min": 1},
    {"name": "status", "type": "text", "enum": ["paid"]},
]


def api_dataset(
    url: str, name: str = "api_orders", columns: list[dict] = ORDER_COLUMNS
) -> dg.AssetsDefinition:
    """A dataset of the API's records at ``url`` (``{date}``: the day), in ``io_test.<name>``."""
    spec = DatasetSpec.model_validate(
        {
            "name": name,
            "asset_key": ["io_test", name],
            "description": "Records from the shop's API.",
            "group": "test",
            "partitions": {"start": "2026-01-01"},
            "source": {"kind": "http_json", "url": url, "records_path": "data.records"},
            "columns": columns,
            "primary_key": ["order_id"],
            "partition_column": "order_date",
        }
    )
    return build_dataset_asset(spec)


def test_pages_are_followed_retried_and_validated(api: str, resources, instance) -> None:
    asset = api_dataset(f"{api}/orders?date={{date}}")

    result = dg.materialize([asset], partition_key=DAY, resources=resources, instance=instance)

    assert result.success
    metadata = result.asset_materializations_for_node("io_test__api_orders")[0].metadata
    figures = [metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered")]
    assert figures == [6, 4, 2]
    assert OrdersApi.hits[f"/orders?date={DAY}&page=2"] == 2  # the 503 was retried
    warehouse = resources["warehouse"]
    loaded = fetch_all(warehouse, sql.SQL("SELECT order_id FROM io_test.api_orders ORDER BY 1"))
    assert loaded == [(1,), (2,), (3,), (5,)]
    letters = fetch_all(
        warehouse,
        sql.SQL("SELECT stage, error_class, payload FROM platform.dead_letter_records ORDER BY id"),
    )
    assert letters == [
        ("parse", "NotAnObject", {"record": "not an object"}),
        (
            "validate",
            "ValidationError",
            {"order_id": "4", "order_date": DAY, "quantity": "two", "status": "paid"},
        ),
    ]


def test_numbers_keep_every_digit_the_api_wrote(api: str, resources, instance) -> None:
    """A JSON number is read as the decimal it spells, never through a binary float: nothing is
    rounded, into a decimal column or inside a nested object kept as JSON text."""
    asset = api_dataset(
        f"{api}/exact?date={{date}}",
        "api_amounts",
        [
            *ORDER_COLUMNS[:2],
            {"name": "amount", "type": "decimal", "precision": 18, "scale": 4},
            {"name": "detail", "type": "text"},
        ],
    )
    result = dg.materialize([asset], partition_key=DAY, resources=resources, instance=instance)
    assert result.success
    stored = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT order_id, amount::text, detail FROM io_test.api_amounts ORDER BY 1"),
    )
    assert stored == [
        (1, "1234567890123.4567", '{"tags": [1E+2], "unit_price": 0.30000000000000000001}'),
        (2, "100.0000", None),
        (3, "0.1000", '{"unit_price": 0}'),
    ]


def test_a_retry_waits_as_long_as_the_api_asks(api: str, resources, instance) -> None:
    """A 429 with ``Retry-After: 1`` is retried no sooner than a second later (the backoff alone
    would wait at most 0.2 s), and the load then completes."""
    asset = api_dataset(f"{api}/busy?date={{date}}")
    result = dg.materialize([asset], partition_key=DAY, resources=resources, instance=instance)
    assert result.success
    assert OrdersApi.hits[f"/busy?date={DAY}"] == 2
    first, retried = OrdersApi.asked_at
    assert retried - first >= 1.0
    loaded = fetch_all(
        resources["warehouse"], sql.SQL("SELECT order_id FROM io_test.api_orders ORDER BY 1")
    )
    assert loaded == [(1,), (2,), (3,), (5,)]


@pytest.mark.parametrize(
    ("header_at", "low", "high"),
    [
        (lambda now: "7", 7.0, 7.0),
        (lambda now: format_datetime(now + timedelta(hours=1), usegmt=True), 3000.0, 3600.0),
        (lambda now: format_datetime(now - timedelta(seconds=30), usegmt=True), 0.0, 0.0),
        (
            lambda now: format_datetime(now.replace(tzinfo=None) + timedelta(hours=1)),
            3000.0,
            3600.0,
        ),
        (lambda now: "soon", None, None),
    ],
    ids=["seconds", "date", "past date", "date without zone", "unreadable"],
)
def test_retry_after_is_read_as_seconds_or_as_a_date(
    header_at: Callable[[datetime], str], low: float | None, high: float | None
) -> None:
    """The header is written when the test runs, not when it is collected: a suite slower than
    an hour to get here must not turn "in an hour" into "now"."""
    response = requests.Response()
    response.headers["Retry-After"] = header_at(datetime.now(UTC))
    seconds = retry_after_s(response)
    assert seconds is None if low is None else low <= seconds <= high


def test_an_error_status_fails_clearly_and_is_not_retried(api: str, resources, instance) -> None:
    asset = api_dataset(f"{api}/missing?date={{date}}")

    result = dg.materialize(
        [asset], partition_key=DAY, resources=resources, instance=instance, raise_on_error=False
    )

    assert not result.success
    error = result.failure_data_for_node("io_test__api_orders").error
    assert f"/missing?date={DAY} answered 404" in error.message
    assert OrdersApi.hits[f"/missing?date={DAY}"] == 1
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_an_unavailable_api_counts_as_transient() -> None:
    assert is_transient(SourceUnavailableError("503"))
