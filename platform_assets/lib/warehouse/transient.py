"""Which database errors are worth retrying, and retrying only those.

Transient: serialization failures, deadlocks, lock timeouts, lost or refused connections, a server
shutting down, starting up or out of connections. A later attempt can succeed without anyone
changing anything. Everything else (bad data, constraint violations, a type mismatch, a wrong
password, a bug) fails at once: retrying it would only hide it.

A lost connection often carries no SQLSTATE at all: libpq reports it as a driver error (ADBC's
``IO`` status, psycopg's ``OperationalError`` without ``sqlstate``), so those are recognised by
libpq's own wording for a connection that failed, and only those.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import adbc_driver_manager
import dagster as dg
import psycopg
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

T = TypeVar("T")

# With the waits of ``retry_transient``, about 40 s: a server restarting or failing over.
TRANSIENT_ATTEMPTS = 10

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


# libpq's messages for a connection that was lost, refused or not yet (or no longer) accepted.
CONNECTION_FAILURE = re.compile(
    "|".join(
        [
            r"server closed the connection unexpectedly",
            r"terminating connection due to administrator command",
            r"the database system is (shutting down|starting up|in recovery mode"
            r"|not yet accepting connections)",
            r"connection refused",
            r"Is the server running",
            r"no connection to the server",
            r"connection reset by peer",
            r"broken pipe",
            r"SSL SYSCALL error: EOF detected",
            r"could not receive data from server",
            r"could not send data to server",
        ]
    ),
    re.IGNORECASE,
)


def is_connection_failure(error: BaseException) -> bool:
    """Whether ``error`` is a driver-level error (no SQLSTATE) saying the connection to the
    server was lost, refused or not accepted yet."""
    driver_level = isinstance(error, adbc_driver_manager.Error | psycopg.OperationalError)
    return (
        driver_level
        and not getattr(error, "sqlstate", None)
        and CONNECTION_FAILURE.search(str(error)) is not None
    )


def is_transient(error: BaseException | None) -> bool:
    """Whether ``error``, or any error it was raised from, carries a transient SQLSTATE, is a
    lost or refused connection, or says it is transient (``transient = True``, e.g. a source API
    that answered 503)."""
    while error is not None:
        if getattr(error, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        if getattr(error, "transient", False) is True or is_connection_failure(error):
            return True
        error = error.__cause__
    return False


def describe_error(error: BaseException | None) -> str:
    """The class and first message line of the first error in the chain that has a message (a
    stream closed by a failure carries none itself)."""
    first = error
    while error is not None:
        lines = str(error).strip().splitlines()
        if lines:
            return f"{type(error).__name__}: {lines[0]}"
        error = error.__cause__
    return type(first).__name__


def retry_transient(
    action: Callable[[], T],
    log: structlog.stdlib.BoundLogger,
    attempts: int = TRANSIENT_ATTEMPTS,
) -> T:
    """Run ``action``, retrying transient database errors with exponential backoff and jitter.

    Waits grow 0.25, 0.5, 1, 2, 4, 8, 8… seconds (plus up to 0.5 s of jitter), so the default
    10 attempts ride out about 40 s of a server restarting or failing over.
    """

    def before_sleep(state: RetryCallState) -> None:
        log.warning(
            "transient_error_retrying",
            attempt=state.attempt_number,
            error=describe_error(state.outcome.exception()),
        )

    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(multiplier=0.25, max=8, jitter=0.5),
        stop=stop_after_attempt(attempts),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(action)


@contextmanager
def permanent_unless_transient(label: str) -> Iterator[None]:
    """Let a transient error through as it is (a step ``RetryPolicy`` may try again later), and
    turn any other into ``dg.Failure(allow_retries=False)`` saying ``label``: no retry can fix bad
    data, a bad file, a schema conflict or a bug, so none is allowed."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:
        if is_transient(error):
            raise
        raise dg.Failure(description=f"{label}: {error}", allow_retries=False) from error
