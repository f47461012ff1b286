"""Dagster instance storage (runs, event log, schedules) on PostgreSQL, embedded by default.

Referenced from ``dagster.yaml`` as a custom storage class, so that plain ``dagster dev`` starts the
embedded server itself when ``PLATFORM_DAGSTER_STORAGE_URL`` is unset. Everything else is
dagster-postgres's own storage.
"""

import os
from collections.abc import Mapping
from typing import Any, Self

from dagster._config.config_schema import UserConfigSchema
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, set_pg_statement_timeout
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from platform_assets.lib import settings
from platform_assets.lib.redaction import redacted
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import embedded_database_url
from platform_assets.lib.server.event_log import PlatformEventLog

# The instance role's own default (roles.STATEMENT_TIMEOUTS), and the webserver's pool defaults.
INSTANCE_STATEMENT_TIMEOUT_MS = 15 * 60 * 1000
POOL_RECYCLE_S = 3600
POOL_MAX_OVERFLOW = 20
# Dagster's own switch (read at every event): the materialisations of one multi-partition output,
# and the planned events of a new run, are stored with one INSERT per this many instead of one
# (and its index updates) each. 0 turns it off.
EVENT_BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 500


def instance_storage_url() -> str:
    """SQLAlchemy URL of the Dagster storage database.

    dagster-postgres is driven through psycopg2: under SQLAlchemy 2.1 a bare ``postgresql://`` URL
    selects psycopg 3, with which the webserver's ``/graphql`` fails ("the connection is closed").
    """
    url = settings.configured_url(settings.DAGSTER_STORAGE_URL_VAR) or embedded_database_url(
        settings.DAGSTER_DATABASE, roles.INSTANCE
    )
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        url = f"postgresql+psycopg2://{rest}"
    try:
        make_url(url).port  # noqa: B018 (parsed now: SQLAlchemy's own error would quote the URL)
    except (ArgumentError, ValueError) as error:
        raise redacted(error, f"{settings.DAGSTER_STORAGE_URL_VAR} is malformed") from None
    return url


def _pooled_event_log(url: str) -> PlatformEventLog:
    """The event log, its connections pooled: two kept open, since storing an asset event uses a
    second connection inside the first (its table check), which a pool of one (the webserver's)
    would open and close for every event. Its tables exist: the storage's own event log, built
    first, made sure of them."""
    event_log = PlatformEventLog(url, should_autocreate_tables=False)
    engine = create_pg_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=2,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_S,
    )
    event.listen(
        engine,
        "connect",
        lambda connection, _: set_pg_statement_timeout(connection, INSTANCE_STATEMENT_TIMEOUT_MS),
    )
    event_log._engine = engine  # dagster-postgres offers no other way to size its pool
    return event_log


class ConfiguredByEnvironment:
    """A Dagster instance component with nothing to configure in ``dagster.yaml``: it takes its
    place from the environment (``lib/settings``) when built with only its ``inst_data``."""

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        """No keys: ``config: {}`` in ``dagster.yaml``."""
        return {}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Self:
        """The component, configured from the environment."""
        return cls(inst_data=inst_data)


class PlatformPostgresStorage(ConfiguredByEnvironment, DagsterPostgresStorage):
    """dagster-postgres storage whose URL comes from the environment or the embedded server."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(postgres_url=instance_storage_url(), inst_data=inst_data)
        # Outside the webserver, dagster-postgres opens a new connection for every statement
        # (SQLAlchemy's NullPool). With password logins each costs a SCRAM handshake and a server
        # process, and a range run writes an event per partition and per check result: a
        # 120-day run of orders, metrics and checks spent most of its time connecting. Every
        # process (run worker, daemon, code server) keeps its connections open instead, as the
        # webserver does; bursts beyond them open and close extra ones.
        for storage in (self.run_storage, self.schedule_storage):
            storage.optimize_for_webserver(
                statement_timeout=INSTANCE_STATEMENT_TIMEOUT_MS,
                pool_recycle=POOL_RECYCLE_S,
                max_overflow=POOL_MAX_OVERFLOW,
            )
        self._event_log_storage.dispose()
        self._event_log_storage = _pooled_event_log(self.postgres_url)
        # A range run writes one materialisation per partition, and its creation one planned
        # event per partition: one by one, a 120-day range of orders and metrics spent ~0.7 s on
        # them under `dg dev`. Every process of the instance stores them in batches (planned
        # events: event_log.py), unless the environment says otherwise.
        os.environ.setdefault(EVENT_BATCH_SIZE_VAR, str(EVENT_BATCH_SIZE))
