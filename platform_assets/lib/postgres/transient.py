"""Which database errors are worth retrying, and retrying only those.

Transient: serialization failures, deadlocks, lock timeouts, lost or refused connections, a server
shutting down or out of connections. A later attempt can succeed without anyone changing anything.
Everything else (bad data, constraint violations, a type mismatch, a bug) fails at once: retrying
it would only hide it.
"""

from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

T = TypeVar("T")

TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
        "08000",  # connection_exception
        "08001",  # sqlclient_unable_to_establish_sqlconnection
        "08003",  # connection_does_not_exist
        "08004",  # sqlserver_rejected_establishment_of_sqlconnection
        "08006",  # connection_failure
    }
)


def is_transient(error: BaseException | None) -> bool:
    """Whether ``error``, or any error it was raised from, carries a transient SQLSTATE or says
    it is transient (``transient = True``, e.g. a source API that answered 503)."""
    while error is not None:
        if getattr(error, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        if getattr(error, "transient", False) is True:
            return True
        error = error.__cause__
    return False


def retry_transient(action: Callable[[], T], attempts: int, log: structlog.stdlib.BoundLogger) -> T:
    """Run ``action``, retrying transient database errors with exponential backoff and jitter."""

    def before_sleep(state: RetryCallState) -> None:
        log.warning(
            "transient_error_retrying",
            attempt=state.attempt_number,
            error=str(state.outcome.exception()).splitlines()[0],
        )

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_random_exponential(multiplier=0.2, max=5),
        stop=stop_after_attempt(attempts),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(action)
