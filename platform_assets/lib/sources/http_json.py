"""A paged JSON API read page by page, with retries for the errors that may pass.

Each page becomes one chunk: the declared fields of every record as text (the same parser then
types every source; a JSON number keeps every digit it was written with), and records that are
not JSON objects set aside as unreadable. Connection errors, timeouts, 408, 429 and 5xx are
retried (tenacity: exponential backoff with jitter, never sooner than the API's ``Retry-After``,
up to a minute); a 4xx or a body that is not the expected JSON fails the run with the URL named.
Nothing else is retried.
"""

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Annotated, Literal
from urllib.parse import urljoin

import numpy as np
import pyarrow as pa
import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from platform_assets.lib.sources.field_text import field_text, value_at
from platform_assets.lib.sources.landing_readers import LandingFileError, RawBatch, UnreadableRecord

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class HttpJsonSource(BaseModel):
    """A paged JSON API: ``url`` (``{date}`` is the partition's key) returns an object holding a
    list of records at ``records_path`` and the next page's URL at ``next_path`` (null on the
    last page).

    A bearer token, if the API needs one, comes from the environment variable ``token_env``.
    Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and
    jitter, waiting at least what the API's ``Retry-After`` asks (up to a minute), up to
    ``max_attempts``; any other error status fails the run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["http_json"]
    url: str = Field(pattern=r"^https?://")
    records_path: str = "records"
    next_path: str = "next"
    token_env: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 30
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 5
    extra_columns: Literal["error", "ignore"] = "ignore"

    @model_validator(mode="after")
    def _url_names_the_partition(self) -> "HttpJsonSource":
        if "{date}" not in self.url:
            raise ValueError("source.url must contain {date}")
        return self


class SourceUnavailableError(Exception):
    """The API is unreachable or answered 408, 429 or 5xx: a later attempt may succeed.

    ``transient`` tells the IO manager's retry (and so the step's RetryPolicy) that it may retry
    the write, which reads the source again from the first page. ``retry_after_s`` is how long
    the API asked to be left alone (its ``Retry-After``), if it said.
    """

    transient = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


MAX_RETRY_AFTER_S = 60.0  # the longest wait an API's Retry-After gets inside one attempt
_BACKOFF = wait_random_exponential(multiplier=0.2, max=10)


def retry_after_s(response: requests.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (given as seconds or as an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": a time in UTC, whatever the sender's zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _wait(state: RetryCallState) -> float:
    """Exponential backoff with jitter, but never shorter than the API's ``Retry-After``
    (capped at ``MAX_RETRY_AFTER_S``)."""
    backoff = _BACKOFF(state)
    error = state.outcome.exception() if state.outcome else None
    asked = getattr(error, "retry_after_s", None)
    return max(backoff, min(asked, MAX_RETRY_AFTER_S)) if asked else backoff


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, SourceUnavailableError | requests.ConnectionError | requests.Timeout)


def _headers(source: HttpJsonSource) -> dict[str, str]:
    if source.token_env is None:
        return {"Accept": "application/json"}
    token = os.environ.get(source.token_env)
    if not token:
        raise LandingFileError(f"environment variable {source.token_env} (the API token) is unset")
    return {"Accept": "application/json", "Authorization": f"Bearer {token}"}


def _page(session: requests.Session, source: HttpJsonSource, url: str) -> dict:
    def get() -> dict:
        response = session.get(url, headers=_headers(source), timeout=source.timeout_s)
        if response.status_code in _RETRY_STATUSES:
            raise SourceUnavailableError(
                f"{url} answered {response.status_code}", retry_after_s(response)
            )
        if response.status_code >= 400:
            raise LandingFileError(f"{url} answered {response.status_code}: {response.text[:200]}")
        try:
            # A JSON number is the decimal it spells: a float would round 1234567890123.4567.
            body = response.json(parse_float=Decimal)
        except ValueError as error:
            raise LandingFileError(f"{url} did not return JSON: {error}") from error
        if not isinstance(body, dict):
            raise LandingFileError(f"{url} returned {type(body).__name__}, not an object")
        return body

    retrying = Retrying(
        retry=retry_if_exception(_worth_retrying),
        wait=_wait,
        stop=stop_after_attempt(source.max_attempts),
        reraise=True,
    )
    try:
        return retrying(get)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise SourceUnavailableError(
            f"{url} unreachable after {source.max_attempts} attempts: {error}"
        ) from error


def stream_http_json(
    source: HttpJsonSource, key: str, declared: list[str], paths: dict[str, str] | None = None
) -> Iterator[RawBatch]:
    """Every page for the partition ``key``, following ``next_path`` links, one chunk per page;
    each declared column from its record's field of the same name, or from its dotted path in
    ``paths``."""
    paths = paths or {}
    url: str | None = source.url.replace("{date}", key)
    seen_urls: set[str] = set()
    number = 0
    with requests.Session() as session:
        while url:
            if url in seen_urls:
                raise LandingFileError(f"the API links back to {url}: the pages loop")
            seen_urls.add(url)
            body = _page(session, source, url)
            records = value_at(body, source.records_path)
            if not isinstance(records, list):
                raise LandingFileError(f"{url} has no list at {source.records_path!r}")
            good: list[dict] = []
            positions: list[int] = []
            unreadable: list[UnreadableRecord] = []
            for record in records:
                number += 1
                if not isinstance(record, dict):
                    unreadable.append(
                        UnreadableRecord(
                            f"{source.url}:record {number}",
                            {"record": record},
                            "NotAnObject",
                            f"record is a JSON {type(record).__name__}, not an object",
                            {},
                        )
                    )
                    continue
                extra = sorted(
                    set(record) - set(declared) - {p.split(".")[0] for p in paths.values()}
                )
                if extra and source.extra_columns == "error":
                    raise LandingFileError(f"{url} has undeclared field(s) {extra}")
                good.append(record)
                positions.append(number)
            rows = pa.table(
                {
                    name: pa.array(
                        [field_text(value_at(r, paths.get(name, name))) for r in good], pa.string()
                    )
                    for name in declared
                }
            )
            yield RawBatch(
                rows, source.url, np.array(positions, dtype=np.int64), unreadable, "record "
            )
            following = value_at(body, source.next_path)
            url = urljoin(url, following) if following else None
