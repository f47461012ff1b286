"""The embedded PostgreSQL server used when no database URL is configured.

``pgserver`` ships a real PostgreSQL 16. The server is started once under ``<data dir>/pgdata`` and
left running (``cleanup_mode=None``) so that every process of ``dagster dev`` (webserver, daemon,
code server, run workers) shares it; it listens only on a unix socket inside the data directory.
``platform-db stop`` stops it; deleting the data directory resets everything.
"""

import argparse
import contextlib
import os
import subprocess
import warnings
from pathlib import Path

import fasteners
import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # pgserver resolves a runtime dir at import; without XDG_RUNTIME_DIR it warns and uses /tmp.
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver import PostgresServer

from platform_assets.lib import settings

SERVER_SYSTEM_USER = "pgserver"  # the account pgserver runs the server as when started by root
# Settings for a loading-heavy warehouse on a developer machine (stock defaults are sized for a
# 128 MB box). Durability is untouched: fsync and synchronous_commit stay on.
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "wal_buffers": "64MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "256MB",
    "work_mem": "64MB",
    "random_page_cost": "1.1",
}
TUNED_MARKER = "platform_settings_applied"


def pgdata_dir(data_dir: Path | None = None) -> Path:
    """Where the embedded server keeps its cluster."""
    return (data_dir or settings.data_dir()) / "pgdata"


def embedded_server(data_dir: Path | None = None) -> PostgresServer:
    """Start the embedded server if it is not running yet, and return a handle to it."""
    pgdata = pgdata_dir(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    if not (pgdata / TUNED_MARKER).exists():
        _apply_server_settings(server, pgdata)
    return server


def _apply_server_settings(server: PostgresServer, pgdata: Path) -> None:
    """Write ``SERVER_SETTINGS`` with ALTER SYSTEM and restart once, the first time only.

    Several processes of ``dagster dev`` start at once; a file lock makes one of them do it.
    """
    with fasteners.InterProcessLock(pgdata.parent / "pgdata.settings.lock"):
        if (pgdata / TUNED_MARKER).exists():
            return
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for name, value in SERVER_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
        restarted = _pg_ctl(pgdata, "restart", "-w", "-m", "fast")
        if restarted.returncode != 0:
            raise RuntimeError(f"could not restart the server in {pgdata}: {restarted.stderr}")
        (pgdata / TUNED_MARKER).touch()


def embedded_database_url(database: str, data_dir: Path | None = None) -> str:
    """libpq URL of ``database`` on the embedded server, creating the database on first use."""
    server = embedded_server(data_dir)
    ensure_database(server.get_uri(), database)
    return server.get_uri(database)


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` unless it exists (CREATE DATABASE cannot run in a transaction)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            # Another process may create it between our check and our CREATE: the same outcome.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _pg_ctl(pgdata: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pgserver's bundled ``pg_ctl`` on ``pgdata``, as the server's system user when root."""
    from pgserver._commands import POSTGRES_BIN_PATH  # pgserver has no public stop-only call

    return subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), *args],
        user=SERVER_SYSTEM_USER if os.geteuid() == 0 else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def stop_embedded_server(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if it runs (never starting it); return whether it was running."""
    pgdata = pgdata_dir(data_dir)
    if not (pgdata / "PG_VERSION").exists() or _pg_ctl(pgdata, "status").returncode != 0:
        return False
    stopped = _pg_ctl(pgdata, "stop", "-w", "-m", "fast")
    if stopped.returncode != 0:
        raise RuntimeError(f"pg_ctl could not stop the server in {pgdata}: {stopped.stderr}")
    return True


def main() -> None:
    """platform-db: start, inspect or stop the embedded server from the shell."""
    parser = argparse.ArgumentParser(prog="platform-db", description=main.__doc__)
    parser.add_argument("action", choices=["start", "url", "stop"])
    args = parser.parse_args()
    if args.action == "stop":
        print("stopped" if stop_embedded_server() else "not running")
    else:
        print(embedded_database_url(settings.WAREHOUSE_DATABASE))
