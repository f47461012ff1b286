"""The platform's own tables (schema ``platform``): creating them safely from any writer."""

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables.statements import ADVISORY_XACT_LOCK

PLATFORM_SCHEMA = "platform"


def create_platform_table(cursor: adbc.Cursor, table: str, ddl: list[str]) -> None:
    """Run ``ddl`` (``IF NOT EXISTS`` statements) under a lock on ``platform.<table>``, held until
    the transaction ends, so concurrent first writers do not race each other's CREATE."""
    cursor.execute(ADVISORY_XACT_LOCK, parameters=(f"ddl|{PLATFORM_SCHEMA}.{table}",))
    for statement in ddl:
        cursor.execute(statement)


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
