"""The embedded PostgreSQL server used when no database URL is configured.

``pgserver`` ships a real PostgreSQL 16. The server is started once under ``<data dir>/pgdata`` and
left running (``cleanup_mode=None``) so that every process of ``dagster dev`` (webserver, daemon,
code server, run workers) shares it; it listens only on a unix socket inside the data directory.
``platform-db stop`` stops it; deleting the data directory resets everything.

Every role authenticates with ``scram-sha-256`` (pgserver's cluster trusts its socket; the first
start replaces that): each has a password generated once and kept in ``<data dir>/secrets/`` in a
file only its owner may read (0600), which the resources read when they connect. The superuser's
is read only to set the server up (``embedded_admin_url``), never by a run: a process that reaches
the socket and changes the user name in its URL is refused.
"""

import argparse
import contextlib
import hashlib
import os
import secrets
import subprocess
import tempfile
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import fasteners
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

with warnings.catch_warnings():
    # pgserver resolves a runtime dir at import; without XDG_RUNTIME_DIR it warns and uses /tmp.
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver import PostgresServer

from platform_assets.lib import settings
from platform_assets.lib.server import roles

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
ROLES_MARKER = "platform_roles_applied"
AUTH_MARKER = "platform_passwords_required"
SUPERUSER = "postgres"
# Every connection over the socket authenticates with its role's password: no trust, no peer.
HBA_CONF = (
    "# platform_assets: every role authenticates with its password\nlocal all all scram-sha-256\n"
)


def pgdata_dir(data_dir: Path | None = None) -> Path:
    """Where the embedded server keeps its cluster."""
    return (data_dir or settings.data_dir()) / "pgdata"


def role_password(role: str, data_dir: Path | None = None) -> str:
    """The embedded server's password of ``role``: generated on first use and kept in
    ``<data dir>/secrets/<role>.password``, readable by its owner only (a secret: never log it)."""
    directory = (data_dir or settings.data_dir()) / "secrets"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{role}.password"
    if not path.exists():
        descriptor, draft = tempfile.mkstemp(dir=directory)  # created 0600
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
        with contextlib.suppress(FileExistsError):  # another process made it first: use that one
            os.link(draft, path)
        os.unlink(draft)
    return path.read_text().strip()


def _as_role(server: PostgresServer, role: str, database: str, data_dir: Path | None) -> str:
    """The server's URL of ``database`` for ``role``, with its password."""
    netloc = f"{quote(role, safe='')}:{quote(role_password(role, data_dir), safe='')}@"
    return urlunsplit(urlsplit(server.get_uri(database))._replace(netloc=netloc))


def embedded_server(data_dir: Path | None = None) -> PostgresServer:
    """Start the embedded server if it is not running yet, and return a handle to it: tuned,
    with its two databases, the platform's roles (``roles``) and password authentication in
    place."""
    pgdata = pgdata_dir(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    if not (pgdata / TUNED_MARKER).exists():
        _apply_server_settings(server, pgdata, data_dir)
    if not _roles_applied(pgdata):
        _bootstrap_roles(server, pgdata, data_dir)
    if not (pgdata / AUTH_MARKER).exists():
        _require_passwords(server, pgdata, data_dir)
    return server


def _roles_digest() -> str:
    """A digest of the roles' statements: a data directory whose roles were applied from other
    statements (an older release) gets them applied again."""
    text = _roles_sql(settings.WAREHOUSE_DATABASE, settings.DAGSTER_DATABASE)
    return hashlib.sha256(text.encode()).hexdigest()


def _roles_applied(pgdata: Path) -> bool:
    marker = pgdata / ROLES_MARKER
    return marker.exists() and marker.read_text() == _roles_digest()


def _bootstrap_roles(server: PostgresServer, pgdata: Path, data_dir: Path | None) -> None:
    """Create both databases and the platform's roles, and hand them what is theirs; once per
    data directory (a file lock makes one process of ``dagster dev`` do it)."""
    with fasteners.InterProcessLock(pgdata.parent / "pgdata.roles.lock"):
        if _roles_applied(pgdata):
            return
        admin = _as_role(server, SUPERUSER, SUPERUSER, data_dir)
        for database in (settings.WAREHOUSE_DATABASE, settings.DAGSTER_DATABASE):
            ensure_database(admin, database)
        apply_roles(
            admin,
            _as_role(server, SUPERUSER, settings.WAREHOUSE_DATABASE, data_dir),
            _as_role(server, SUPERUSER, settings.DAGSTER_DATABASE, data_dir),
        )
        (pgdata / ROLES_MARKER).write_text(_roles_digest())


def _require_passwords(server: PostgresServer, pgdata: Path, data_dir: Path | None) -> None:
    """Give every role its password, then make the server ask for it (``pg_hba.conf``) and
    reload; once per data directory. Until now pgserver's cluster trusted its socket, which is
    how this connection gets in."""
    with fasteners.InterProcessLock(pgdata.parent / "pgdata.auth.lock"):
        if (pgdata / AUTH_MARKER).exists():
            return
        with psycopg.connect(
            _as_role(server, SUPERUSER, SUPERUSER, data_dir), autocommit=True
        ) as conn:
            for role in (SUPERUSER, *roles.ROLES):
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(role_password(role, data_dir))
                    )
                )
            hba = pgdata / "pg_hba.conf"
            owner = hba.stat()
            hba.write_text(HBA_CONF)
            os.chown(hba, owner.st_uid, owner.st_gid)  # the server's own account keeps it
            hba.chmod(0o600)
            conn.execute("SELECT pg_reload_conf()")
        (pgdata / AUTH_MARKER).touch()


def apply_roles(admin_url: str, warehouse_url: str, instance_url: str) -> None:
    """Apply the roles' statements (``roles``) as a superuser: the cluster's, then each
    database's own in that database."""
    warehouse_database = conninfo_to_dict(warehouse_url)["dbname"]
    instance_database = conninfo_to_dict(instance_url)["dbname"]
    batches = [
        (admin_url, roles.cluster_statements(str(warehouse_database), str(instance_database))),
        (warehouse_url, roles.warehouse_statements()),
        (instance_url, roles.instance_statements()),
    ]
    for url, statements in batches:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def _apply_server_settings(server: PostgresServer, pgdata: Path, data_dir: Path | None) -> None:
    """Write ``SERVER_SETTINGS`` with ALTER SYSTEM and restart once, the first time only.

    Several processes of ``dagster dev`` start at once; a file lock makes one of them do it.
    """
    with fasteners.InterProcessLock(pgdata.parent / "pgdata.settings.lock"):
        if (pgdata / TUNED_MARKER).exists():
            return
        admin = _as_role(server, SUPERUSER, SUPERUSER, data_dir)
        with psycopg.connect(admin, autocommit=True) as conn:
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


def embedded_database_url(database: str, role: str, data_dir: Path | None = None) -> str:
    """libpq URL of ``database`` (the warehouse or the instance database, both made when the
    server is set up) on the embedded server for ``role`` (one of ``roles.ROLES``), with its
    password (a secret). No superuser connection is made: runs never need one."""
    return _as_role(embedded_server(data_dir), role, database, data_dir)


def embedded_admin_url(database: str, data_dir: Path | None = None) -> str:
    """libpq URL of ``database`` on the embedded server as its superuser: for setting the
    server up (roles, databases) and for tests, never for runs."""
    server = embedded_server(data_dir)
    ensure_database(_as_role(server, SUPERUSER, SUPERUSER, data_dir), database)
    return _as_role(server, SUPERUSER, database, data_dir)


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


def apply_roles_to_server(warehouse_database: str, instance_database: str) -> None:
    """Create both databases if missing and apply the roles on the server whose superuser URL
    is in ``PLATFORM_ADMIN_DATABASE_URL`` (an external server; the Kubernetes roles Job)."""
    admin = settings.configured_url(settings.ADMIN_URL_VAR)
    if admin is None:
        raise SystemExit(f"set {settings.ADMIN_URL_VAR} to a superuser's URL of the server")
    for database in (warehouse_database, instance_database):
        ensure_database(admin, database)
    apply_roles(
        admin,
        make_conninfo(admin, dbname=warehouse_database),
        make_conninfo(admin, dbname=instance_database),
    )


def _roles_sql(warehouse_database: str, instance_database: str) -> str:
    """The roles' statements as a psql script, for a server the platform does not run: both
    databases created first unless they exist (psql's ``\\gexec``: CREATE DATABASE cannot run
    in a transaction), then what ``apply_roles`` applies, each part in its database."""
    parts = ["-- as a superuser, in any database of the server"]
    for database in (warehouse_database, instance_database):
        create = sql.SQL(
            "SELECT format('CREATE DATABASE %I', {name})"
            " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {name})"
        ).format(name=sql.Literal(database))
        parts.append(f"{create.as_string()}\\gexec")
    parts += [
        f"{s.as_string()};" for s in roles.cluster_statements(warehouse_database, instance_database)
    ]
    parts += [f"-- in the warehouse database\n\\connect {warehouse_database}"]
    parts += [f"{s.as_string()};" for s in roles.warehouse_statements()]
    parts += [f"-- in the Dagster instance database\n\\connect {instance_database}"]
    parts += [f"{s.as_string()};" for s in roles.instance_statements()]
    return "\n".join(parts)


def main() -> None:
    """platform-db: start, inspect or stop the embedded server; print or apply the roles' SQL for
    an external server."""
    parser = argparse.ArgumentParser(prog="platform-db", description=main.__doc__)
    parser.add_argument(
        "action", choices=["start", "url", "reader-url", "stop", "roles-sql", "apply-roles"]
    )
    parser.add_argument("--warehouse-database", default=settings.WAREHOUSE_DATABASE)
    parser.add_argument("--instance-database", default=settings.DAGSTER_DATABASE)
    args = parser.parse_args()
    if args.action == "stop":
        print("stopped" if stop_embedded_server() else "not running")
    elif args.action == "roles-sql":
        print(_roles_sql(args.warehouse_database, args.instance_database))
    elif args.action == "apply-roles":
        apply_roles_to_server(args.warehouse_database, args.instance_database)
        print(f"roles applied: {', '.join(roles.ROLES)}")
    elif args.action == "reader-url":
        print(embedded_database_url(settings.WAREHOUSE_DATABASE, roles.READER))
    else:
        print(embedded_database_url(settings.WAREHOUSE_DATABASE, roles.OWNER))
