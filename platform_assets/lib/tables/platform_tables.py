"""The platform's own tables (schema ``platform``): creating them safely from any writer."""

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.tables.statements import ADVISORY_XACT_LOCK

PLATFORM_SCHEMA = "platform"


def create_platform_table(cursor: adbc.Cursor, table: str, ddl: list[str]) -> None:
    """Run ``ddl`` (``IF NOT EXISTS`` statements) under a lock on ``platform.<table>``, held until
    the transaction ends, so concurrent first writers do not race each other's CREATE."""
    cursor.execute(ADVISORY_XACT_LOCK, parameters=(f"ddl|{PLATFORM_SCHEMA}.{table}",))
    for statement in ddl:
        cursor.execute(statement)
