"""The platform's own tables (schema ``platform``): creating them safely from any writer.

A table is created (or upgraded) once: its DDL's digest is then kept as the table's comment, and
every later writer only reads that comment. So a steady-state load, replay or discard runs no
DDL and takes no lock for it: an idempotent ``CREATE INDEX IF NOT EXISTS`` still takes a SHARE
lock on the table, which a load taking it after its partition lock, against a replay holding row
locks on the same table and waiting for that partition, turned into a deadlock.
"""

import hashlib

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables.statements import ADVISORY_XACT_LOCK

PLATFORM_SCHEMA = "platform"


_COMMENT = "SELECT obj_description(to_regclass($1), 'pg_class')"


def ddl_marker(ddl: list[str]) -> str:
    """The comment a table created by ``ddl`` carries: the digest of those statements."""
    return "platform ddl " + hashlib.sha256("\n".join(ddl).encode()).hexdigest()[:16]


def create_platform_table(cursor: adbc.Cursor, table: str, ddl: list[str]) -> None:
    """Make ``platform.<table>`` what ``ddl`` (``IF NOT EXISTS`` statements) declares: nothing
    to do when its comment already names this DDL (one catalog read, no lock on the table);
    otherwise run ``ddl`` under an advisory lock held until the transaction ends, so concurrent
    first writers do not race each other's CREATE, and record it in the comment."""
    name, marker = f"{PLATFORM_SCHEMA}.{table}", ddl_marker(ddl)
    cursor.execute(_COMMENT, parameters=(name,))
    if cursor.fetchone()[0] == marker:
        return
    cursor.execute(ADVISORY_XACT_LOCK, parameters=(f"ddl|{name}",))
    for statement in ddl:
        cursor.execute(statement)
    comment = sql.SQL("COMMENT ON TABLE {} IS {}").format(
        sql.Identifier(PLATFORM_SCHEMA, table), sql.Literal(marker)
    )
    cursor.execute(comment.as_string())


def _only_when(missing: sql.Composable, alter: sql.Composable) -> str:
    """``alter`` run only when ``missing`` holds: checked first, since ALTER TABLE takes an
    exclusive lock on the table even when it would change nothing."""
    return sql.SQL("DO $$ BEGIN IF {} THEN {}; END IF; END $$").format(missing, alter).as_string()


def add_column_when_missing(table: str, column: str, definition: str) -> str:
    """A statement adding ``column`` to ``platform.<table>`` (a table from before the column) only
    when it is missing."""
    alter = sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
        sql.Identifier(PLATFORM_SCHEMA, table), sql.Identifier(column), sql.SQL(definition)
    )
    missing = sql.SQL(
        "NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {}::regclass"
        " AND attname = {} AND NOT attisdropped)"
    ).format(sql.Literal(f"{PLATFORM_SCHEMA}.{table}"), sql.Literal(column))
    return _only_when(missing, alter)


def replace_check_when_missing(table: str, old: str, new: str, condition: str) -> str:
    """A statement replacing the CHECK ``old`` of ``platform.<table>`` by ``new`` (``condition``)
    only when ``new`` is missing, so a table from before the change is upgraded once."""
    alter = sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}, ADD CONSTRAINT {} CHECK ({})")
    alter = alter.format(
        sql.Identifier(PLATFORM_SCHEMA, table),
        sql.Identifier(old),
        sql.Identifier(new),
        sql.SQL(condition),
    )
    missing = sql.SQL(
        "NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {}::regclass AND conname = {})"
    ).format(sql.Literal(f"{PLATFORM_SCHEMA}.{table}"), sql.Literal(new))
    return _only_when(missing, alter)
