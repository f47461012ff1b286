"""The migration lock: one session-level advisory lock, held on one connection for the whole run."""

import dagster as dg
import psycopg
from pydantic import PrivateAttr

from platform_assets.lib.migrations.ledger import MigrationRefused
from platform_assets.lib.warehouse.resource import Warehouse

LOCK_KEY = "platform.migrations"


class MigrationLock(dg.ConfigurableResource):
    """Takes the migration advisory lock when the run starts and releases it when it ends.

    Every migration statement runs on this connection (autocommit; explicit transactions), so the
    lock is held exactly as long as the run and a second run is refused instead of interleaving.
    """

    warehouse: dg.ResourceDependency[Warehouse]
    _conn: psycopg.Connection | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Connect and take the lock, or refuse the run."""
        self._conn = self._locked_connection()

    def _locked_connection(self) -> psycopg.Connection:
        conn = psycopg.connect(self.warehouse.conninfo(), autocommit=True)
        (acquired,) = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (LOCK_KEY,)
        ).fetchone()
        if not acquired:
            conn.close()
            raise MigrationRefused("another migration run holds the migration lock; try later")
        return conn

    @property
    def connection(self) -> psycopg.Connection:
        """The connection holding the lock. A connection lost with its server (the lock went
        with its session) is replaced by a new one that takes the lock again, or refuses if
        another run took it meanwhile: a retried step carries on under the same guarantee."""
        if self._conn is None:
            raise RuntimeError("MigrationLock is only usable inside a run")
        if self._conn.closed or self._conn.broken:
            self._conn.close()
            self._conn = self._locked_connection()
        return self._conn

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Release the lock and close the connection."""
        if self._conn is not None:
            if not (self._conn.closed or self._conn.broken):
                self._conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (LOCK_KEY,)
                )
            self._conn.close()
            self._conn = None
