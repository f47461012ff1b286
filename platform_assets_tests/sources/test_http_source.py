"""A paged JSON API as a dataset source, against a real HTTP server on localhost."""

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.http_json import SourceUnavailableError
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


class OrdersApi(BaseHTTPRequestHandler):
    """Two pages of orders; the second answers 503 the first time it is asked for."""

    hits: Counter = Counter()

    def do_GET(self) -> None:
        OrdersApi.hits[self.path] += 1
        page = PAGES.get(self.path)
        if self.path.endswith("page=2") and OrdersApi.hits[self.path] == 1:
            self.send_response(503)
            self.end_headers()
            return
        if page is None:
            self.send_error(404, "no such page")
            return
        body = json.dumps(page).encode()
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
    server = ThreadingHTTPServer(("127.0.0.1", 0), OrdersApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def api_dataset(url: str) -> dg.AssetsDefinition:
    spec = DatasetSpec.model_validate(
        {
            "name": "api_orders",
            "asset_key": ["io_test", "api_orders"],
            "description": "Orders from the shop's API.",
            "group": "test",
            "partitions": {"start": "2026-01-01"},
            "source": {"kind": "http_json", "url": url, "records_path": "data.records"},
            "columns": [
                {"name": "order_id", "type": "integer", "required": True},
                {"name": "order_date", "type": "date", "required": True},
                {"name": "quantity", "type": "integer", "min": 1},
                {"name": "status", "type": "text", "enum": ["paid"]},
            ],
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
