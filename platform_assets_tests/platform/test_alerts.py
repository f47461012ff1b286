"""Alerts reach a real webhook on localhost: dead letters over a dataset's error budget (and not
the normal damage of many days), failed runs;
a refused alert is not retried, an unavailable webhook is."""

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from platform_assets.defs.platform.sensors import dead_letter_growth, run_failures
from platform_assets.lib.notifications.notifier import NotifierError, WebhookNotifier, alert
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.sales.test_pipeline import ORDERS


class Webhook:
    """A webhook receiver on localhost: the JSON bodies it got, answering ``status``."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def load_bad_day(
    tmp_path: Path, day: date, resources: dict, instance, malformed_share: float = 0.35
) -> None:
    """A day of ~2,000 orders, a third of them (``malformed_share``) broken, loaded (every bad
    row dead-lettered)."""
    write_day(tmp_path / "orders", day, orders=2_000, seed=day.day, malformed_share=malformed_share)
    landing = LandingZone(directory=str(tmp_path))
    result = dg.materialize(
        [ORDERS],
        partition_key=day.isoformat(),
        resources={**resources, "landing": landing},
        instance=instance,
    )
    assert result.success


def growth_tick(resources: dict, webhook: Webhook, instance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "warehouse": resources["warehouse"],
            "notifier": WebhookNotifier(url=webhook.url),
        },
    ) as context:
        return dead_letter_growth(context)


def test_dead_letters_over_the_budget_alert_once_per_partition_newly_over_it(
    tmp_path, resources, instance, webhook: Webhook
) -> None:
    cursor = growth_tick(resources, webhook, instance, None).cursor
    assert webhook.received == []  # an empty queue says nothing
    load_bad_day(tmp_path, date(2026, 8, 3), resources, instance)
    tick = growth_tick(resources, webhook, instance, cursor)
    (first,) = webhook.received
    assert first["alert"] == "dead_letters_growing" and first["asset_key"] == "sales/orders"
    assert (first["partitions_over_budget"], first["budget"]) == (1, 0.05)
    assert list(first["worst_partitions"]) == ["2026-08-03"]
    assert first["worst_partitions"]["2026-08-03"] > 0.2  # a third of its rows were broken
    assert sum(first["top_rules_broken"].values()) >= 1
    assert tick.skip_reason.skip_message.startswith("alerted: sales/orders: 1 partition(s)")
    tick = growth_tick(resources, webhook, instance, tick.cursor)
    assert len(webhook.received) == 1  # no new partition over budget, no second alert
    assert "no dataset has more partitions over" in tick.skip_reason.skip_message
    load_bad_day(tmp_path, date(2026, 8, 4), resources, instance)
    growth_tick(resources, webhook, instance, tick.cursor)
    assert len(webhook.received) == 2 and webhook.received[1]["partitions_over_budget"] == 2


def test_normal_damage_over_many_days_raises_no_alert(
    tmp_path, resources, instance, webhook: Webhook
) -> None:
    """As on the sample data's first start: 1% of each day's rows damaged (a hundred letters
    over five days here, thousands over the sample's year), every day within its 5% budget."""
    for day in range(1, 6):
        load_bad_day(tmp_path, date(2026, 8, day), resources, instance, malformed_share=0.01)
    tick = growth_tick(resources, webhook, instance, None)
    assert webhook.received == []
    assert "no dataset has more partitions over" in tick.skip_reason.skip_message


def test_a_failed_run_is_reported(tmp_path, resources, instance, webhook: Webhook) -> None:
    failed = dg.materialize(  # no landing file for the day: the run fails
        [ORDERS],
        partition_key="2026-08-09",
        resources={**resources, "landing": LandingZone(directory=str(tmp_path))},
        instance=instance,
        raise_on_error=False,
    )
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failures",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=failed.dagster_run,
        resources={"notifier": WebhookNotifier(url=webhook.url)},
    ).for_run_failure()
    run_failures(context)
    (reported,) = webhook.received
    assert reported["alert"] == "run_failed" and reported["run_id"] == failed.run_id
    assert reported["tags"]["dagster/partition"] == "2026-08-09"


def test_a_refused_alert_fails_at_once_and_an_unavailable_webhook_is_retried(webhook) -> None:
    notifier = WebhookNotifier(url=webhook.url, max_attempts=3)
    webhook.status = 404
    with pytest.raises(NotifierError, match="refused the alert with status 404") as refused:
        notifier.notify(alert("test", "refused"))
    assert len(webhook.received) == 1 and webhook.url not in str(refused.value)
    webhook.status = 503
    with pytest.raises(NotifierError, match="503"):
        notifier.notify(alert("test", "unavailable"))
    assert len(webhook.received) == 1 + 3
