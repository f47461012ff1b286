"""The run queue, looked at twice a second: Dagster's ``QueuedRunCoordinator`` with a finer poll.

Every run the UI, a sensor, a schedule or a backfill submits is queued, and the daemon starts it
on its next look at the queue. Dagster's setting takes whole seconds (``dequeue_interval_seconds``,
default 5, 1 at least), so a run waited 0.5 s on average and up to 1.5 s before its worker was even
asked for: a fifth of the overhead of a 120-day range run under ``dg dev`` (docs/results.md). The
daemon's loop sleeps in steps of 0.5 s, so 0.5 s is the finest interval that shortens the wait.
Everything else (the run and tag limits of ``concurrency:``, pools, retries of unreachable code
servers) is Dagster's queue unchanged; one look is one query of the queued runs, cheap at the
platform's scale (at most 4 runs at once).
"""

from typing import Any

from dagster import Field, QueuedRunCoordinator
from dagster._config.config_schema import UserConfigSchema

DEFAULT_DEQUEUE_INTERVAL_S = 0.5


class PlatformRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` whose ``dequeue_interval_seconds`` may be a fraction of a second."""

    def __init__(self, dequeue_interval_seconds: float | None = None, **kwargs: Any) -> None:
        """Dagster's queue (``kwargs``, as ``from_config_value`` passes them), the interval kept
        here: Dagster's constructor accepts whole seconds only."""
        super().__init__(**kwargs)
        self._dequeue_interval = (
            DEFAULT_DEQUEUE_INTERVAL_S
            if dequeue_interval_seconds is None
            else float(dequeue_interval_seconds)
        )
        if self._dequeue_interval <= 0:
            raise ValueError("dequeue_interval_seconds must be positive")

    @property
    def dequeue_interval_seconds(self) -> float:  # type: ignore[override] (Dagster's is an int)
        """Seconds between two looks of the daemon at the queue."""
        return self._dequeue_interval

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        """Dagster's fields, the interval a float."""
        fields = dict(super().config_type())
        fields["dequeue_interval_seconds"] = Field(
            float,
            is_required=False,
            description=(
                "Seconds between two looks of the daemon at the run queue (a fraction allowed; "
                f"{DEFAULT_DEQUEUE_INTERVAL_S} by default, the daemon sleeps in steps of 0.5 s)."
            ),
        )
        return fields
