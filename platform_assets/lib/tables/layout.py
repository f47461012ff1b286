"""A table's layout as first declared (partition columns and primary key), checked on every write.

A write that declares another primary key or partition column than the table was created with
would otherwise go on silently with the old ones (a later write then repeats the newly declared
key, or replaces the wrong rows). The primary key is read from the catalog; the partition columns,
which the catalog does not record for a plain table, from ``platform.table_layouts``, written when
the platform creates a table (or adopted from the first write after this check existed).
"""

import json

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables.platform_tables import PLATFORM_SCHEMA, create_platform_table
from platform_assets.lib.tables.schema import SchemaMismatchError

TABLE_LAYOUTS = "table_layouts"
TABLE_LAYOUTS_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.table_layouts (
        table_name text PRIMARY KEY,
        partition_columns jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]
PRIMARY_KEY_COLUMNS = (
    "SELECT a.attname FROM pg_index i"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = to_regclass($1) AND i.indisprimary"
    " ORDER BY array_position(i.indkey::int2[], a.attnum)"
)
_TABLE = sql.Identifier(PLATFORM_SCHEMA, TABLE_LAYOUTS)


def prepare(cursor: adbc.Cursor) -> None:
    """Create the layouts table if needed."""
    create_platform_table(cursor, TABLE_LAYOUTS, TABLE_LAYOUTS_DDL)


def record(cursor: adbc.Cursor, table_name: str, partition_columns: list[str]) -> None:
    """Record the partition columns of ``table_name`` (its quoted name) as created."""
    statement = sql.SQL(
        "INSERT INTO {} (table_name, partition_columns) VALUES ($1, $2::jsonb)"
        " ON CONFLICT (table_name) DO UPDATE SET partition_columns = excluded.partition_columns,"
        " recorded_at = now()"
    ).format(_TABLE)
    cursor.execute(statement.as_string(), parameters=(table_name, json.dumps(partition_columns)))


def table_primary_key(cursor: adbc.Cursor, table_name: str) -> tuple[str, ...]:
    """The columns of the table's primary key, in order (none if it has no primary key)."""
    cursor.execute(PRIMARY_KEY_COLUMNS, parameters=(table_name,))
    return tuple(name for (name,) in cursor.fetchall())


def primary_key_constraint(cursor: adbc.Cursor, table_name: str) -> str:
    """The name of the table's primary key constraint."""
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'",
        parameters=(table_name,),
    )
    return cursor.fetchone()[0]


def differences(
    cursor: adbc.Cursor,
    table_name: str,
    partition_columns: list[str],
    primary_key: list[str],
) -> tuple[list[str], bool]:
    """How the declared primary key (none declared included) and partition columns differ from
    the table's (each with the migration it needs; the partition columns only for a table with a
    recorded layout), and whether a layout is recorded. Reads only."""
    found = []
    actual = list(table_primary_key(cursor, table_name))
    if actual != primary_key and not primary_key:
        # A key removed from the declaration (or turned into a dedupe key): the table would go
        # on refusing the repeats the declaration now allows, with a raw constraint error.
        found.append(
            f"{table_name} has primary key {actual} but none is declared; dropping a table's key"
            " is a migration (for a dataset, the migrate job's dry run plans it), or declare"
            f" primary_key {actual} again."
        )
    elif actual != primary_key:
        held = f"primary key {actual}" if actual else "no primary key"
        found.append(
            f"{table_name} has {held} but primary_key {primary_key} is declared; changing"
            " a table's key is a migration (add the new key NOT VALID, validate it, then"
            " drop the old one), or declare the table's key."
        )
    cursor.execute("SELECT to_regclass($1)", parameters=(f"{PLATFORM_SCHEMA}.{TABLE_LAYOUTS}",))
    if cursor.fetchone()[0] is None:
        return found, False
    statement = sql.SQL("SELECT partition_columns FROM {} WHERE table_name = $1").format(_TABLE)
    cursor.execute(statement.as_string(), parameters=(table_name,))
    row = cursor.fetchone()
    if row is None:
        return found, False
    recorded = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    if recorded != partition_columns:
        found.append(
            f"{table_name} is partitioned by {recorded} but partition column(s)"
            f" {partition_columns} are declared; moving a table to another partition column"
            " is a migration (its rows would be replaced by the wrong partitions otherwise)."
        )
    return found, True


def check(
    cursor: adbc.Cursor,
    table_name: str,
    partition_columns: list[str],
    primary_key: list[str],
) -> None:
    """Refuse a write whose declared primary key or partition columns differ from the table's,
    naming both and the migration to write; adopt the partition columns of a table recorded
    before layouts were."""
    found, recorded = differences(cursor, table_name, partition_columns, primary_key)
    if found:
        raise SchemaMismatchError(found[0])
    if not recorded:
        record(cursor, table_name, partition_columns)
