"""The warehouse resource: connections to the database that holds the platform's tables."""

import contextlib
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool
from pydantic import Field, PrivateAttr

from platform_assets.lib import settings
from platform_assets.lib.redaction import redacted
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import embedded_database_url
from platform_assets.lib.warehouse.transient import retry_transient

T = TypeVar("T")


def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) as well as libpq ones."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme.startswith("postgresql+"):
        return f"postgresql://{rest}"
    return url


class Warehouse(dg.ConfigurableResource):
    """Connections to the warehouse database.

    `database_url` comes from `PLATFORM_DATABASE_URL` (through `dg.EnvVar`); when it is unset the
    embedded server's `warehouse` database is used, as `embedded_role` (the tables' owner by
    default; never a superuser). Every connection carries `application_name`
    and the timeouts, so a stuck statement or lock wait ends instead of hanging a run. Ordinary SQL
    goes through a small psycopg pool; bulk loads and reads go through ADBC (binary COPY of Arrow).
    """

    database_url: str | None = Field(
        default=None, description="libpq URL of the warehouse; None means the embedded server."
    )
    embedded_role: str = Field(
        default=roles.OWNER,
        description="The role the embedded server is used as (no URL): one of the platform's.",
    )
    application_name: str = Field(default="platform_assets")
    statement_timeout_ms: int = Field(default=15 * 60 * 1000, ge=0)
    lock_timeout_ms: int = Field(default=60 * 1000, ge=0)
    pool_max_size: int = Field(default=4, ge=1)

    _conninfo: str | None = PrivateAttr(default=None)
    _pool: ConnectionPool | None = PrivateAttr(default=None)
    _bulk_pool: queue.LifoQueue = PrivateAttr(default_factory=queue.LifoQueue)

    def conninfo(self) -> str:
        """The libpq connection string (may hold a password: never log it).

        Resolved once per resource: resolving the embedded server checks that it runs and that
        the database exists, which is not worth a round trip per connection.
        """
        if self._conninfo is None:
            base = libpq_url(self.database_url) if self.database_url else None
            try:
                self._conninfo = make_conninfo(
                    base or embedded_database_url(settings.WAREHOUSE_DATABASE, self.embedded_role),
                    application_name=self.application_name,
                    options=(
                        f"-c statement_timeout={self.statement_timeout_ms} "
                        f"-c lock_timeout={self.lock_timeout_ms}"
                    ),
                )
            except psycopg.ProgrammingError as error:  # its message quotes the URL
                raise redacted(error, "the database URL is malformed") from None
        return self._conninfo

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled psycopg connection in a transaction: committed on success, else rolled back."""
        if self._pool is None:
            self._pool = ConnectionPool(
                self.conninfo(),
                min_size=1,
                max_size=self.pool_max_size,
                open=True,
                # A connection idle through a server restart is found dead before it is lent.
                check=ConnectionPool.check_connection,
            )
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def bulk_connection(self) -> Iterator[adbc.Connection]:
        """An ADBC connection (autocommit off) for Arrow-speed COPY in and out of Postgres.

        Connections are kept for reuse (an ADBC connect loads Postgres's type catalogue, ~35 ms);
        one goes back to the pool only if it rolls back cleanly, so no transaction state leaks.
        """
        try:
            conn = self._bulk_pool.get_nowait()
        except queue.Empty:
            conn = adbc.connect(self.conninfo())
        reusable = False
        try:
            yield conn
            conn.rollback()
            reusable = True
        finally:
            if reusable and self._bulk_pool.qsize() < self.pool_max_size:
                self._bulk_pool.put(conn)
            else:
                conn.close()
                # After a failure the idle connections may be as broken (a server restart):
                # drop them, so a retry connects afresh instead of drawing a dead one.
                self._close_idle_bulk_connections()

    def retried(self, work: Callable[[adbc.Connection], T], log: structlog.stdlib.BoundLogger) -> T:
        """``work`` on a bulk connection, done again on a fresh one after a transient error (a
        lost connection, a deadlock, a server restarting): for work that is one transaction, or
        that is safe to repeat."""

        def attempt() -> T:
            with self.bulk_connection() as conn:
                return work(conn)

        return retry_transient(attempt, log)

    def _close_idle_bulk_connections(self) -> None:
        while not self._bulk_pool.empty():
            with contextlib.suppress(adbc_driver_manager.Error):  # already broken: nothing to do
                self._bulk_pool.get_nowait().close()

    def ensure_schema(self, schema: str) -> None:
        """Create ``schema`` if it does not exist yet."""
        with self.connection() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))

    def close(self) -> None:
        """Close the pools; callers using the resource outside a Dagster run must call this."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._close_idle_bulk_connections()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the pool when the run (or step) that opened it ends."""
        self.close()
