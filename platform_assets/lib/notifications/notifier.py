"""Notifier resources: where the platform's sensors send alerts.

``Notifier`` is the interface the sensors depend on; ``WebhookNotifier`` posts each alert as JSON
to a URL (Slack, Teams, PagerDuty or any HTTP endpoint take such webhooks), and ``LogNotifier``
only logs it, for a platform with no webhook configured. The URL usually embeds a secret, so it
comes from the environment and is never logged, put in metadata or in an error.
"""

from typing import Any

import dagster as dg
import requests
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from platform_assets.lib.logging import platform_logger

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Alert(dict):
    """One alert: ``alert`` (what happened), ``summary`` (one line for people), and fields."""


def alert(kind: str, summary: str, **fields: Any) -> Alert:
    """An alert as every notifier sends it: plain JSON-able data."""
    return Alert(alert=kind, summary=summary, **fields)


class NotifierError(Exception):
    """The notifier could not deliver an alert (the message never names the URL)."""


class Notifier(dg.ConfigurableResource):
    """Where alerts go. Subclasses deliver; this one only logs (a platform with no webhook)."""

    def notify(self, message: Alert) -> None:
        """Deliver ``message``; raise ``NotifierError`` if it could not be delivered."""
        platform_logger().warning("alert", **message)


class LogNotifier(Notifier):
    """Alerts written to the platform's log only."""


class _Retryable(NotifierError):
    pass


class WebhookNotifier(Notifier):
    """Alerts posted as JSON to a webhook. Connection errors, timeouts, 408, 429 and 5xx are
    retried with exponential backoff and jitter; any other status fails at once (a wrong URL or
    a refused payload cannot succeed by trying again)."""

    url: str = Field(description="The webhook URL (from an environment variable: it is a secret)")
    timeout_s: float = 10.0
    max_attempts: int = 4

    def _post(self, message: Alert) -> None:
        try:
            response = requests.post(self.url, json=message, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise _Retryable(f"webhook unreachable ({type(error).__name__})") from None
        except (requests.RequestException, ValueError) as error:  # its message quotes the URL
            raise NotifierError(f"the webhook URL is malformed ({type(error).__name__})") from None
        if response.status_code in _RETRY_STATUSES:
            raise _Retryable(f"webhook answered {response.status_code}")
        if response.status_code >= 400:
            raise NotifierError(f"webhook refused the alert with status {response.status_code}")

    def notify(self, message: Alert) -> None:
        """Post ``message``; a delivery still failing after the retries raises ``NotifierError``."""
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, _Retryable)),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(multiplier=0.5, max=8, jitter=0.5),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._post(message)
        platform_logger().info("alert_sent", alert=message["alert"])
