"""Before-and-after evidence: row count, null counts and a checksum of the table's columns."""

import psycopg
from psycopg import sql

from platform_assets.lib.migrations.model import Key, key_columns


def table_columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    """The table's column names in order (empty if it does not exist)."""
    return [
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        ).fetchall()
    ]


def capture_baseline(conn: psycopg.Connection, schema: str, table: str, key: Key) -> dict:
    """Row count, per-column null counts and an ordered checksum of every current column."""
    columns = table_columns(conn, schema, table)
    if not columns:
        raise LookupError(f"table {schema}.{table} does not exist")
    return {"columns": columns, **measure(conn, schema, table, key, columns)}


def measure(
    conn: psycopg.Connection, schema: str, table: str, key: Key, columns: list[str]
) -> dict:
    """The same figures as the baseline, for ``columns`` only (so new columns do not count); the
    rows in key order, or in the order of their text for a table without a key."""
    row = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    order = sql.SQL(", ").join(map(sql.Identifier, key_columns(key))) if key_columns(key) else row
    nulls = sql.SQL(", ").join(
        sql.SQL("count(*) - count({})").format(sql.Identifier(c)) for c in columns
    )
    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg({row}, '|' ORDER BY {order}), '')), {nulls}"
        " FROM {table}"
    ).format(row=row, order=order, nulls=nulls, table=sql.Identifier(schema, table))
    count, checksum, *null_counts = conn.execute(query).fetchone()
    return {
        "row_count": count,
        "checksum": checksum,
        "null_counts": dict(zip(columns, null_counts, strict=True)),
    }


def explain_rows(conn: psycopg.Connection, query: str | sql.Composable) -> int | None:
    """The planner's row estimate for ``query`` (None if it cannot be planned yet, e.g. it names
    a column the migration has not added), without running it."""
    try:
        with conn.transaction():
            statement = query if isinstance(query, sql.Composable) else sql.SQL(query)
            (plan,) = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + statement).fetchone()
    except psycopg.errors.UndefinedColumn:
        return None
    return plan[0]["Plan"]["Plan Rows"]


def row_count(conn: psycopg.Connection, schema: str, table: str) -> int:
    """How many rows the table holds now."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    return conn.execute(query).fetchone()[0]


def differences(baseline: dict, now: dict) -> list[str]:
    """How ``now`` differs from ``baseline`` (empty when the data is as it was).

    Columns compare as a set: a column dropped and restored comes back last (Postgres cannot put
    it back in place); the checksum is always taken in the baseline's column order.
    """
    found = []
    if "columns" in now and sorted(now["columns"]) != sorted(baseline["columns"]):
        found.append(f"columns: before {baseline['columns']}, now {now['columns']}")
    for figure in ("row_count", "checksum", "null_counts"):
        if figure in now and now[figure] != baseline[figure]:
            found.append(f"{figure}: before {baseline[figure]}, now {now[figure]}")
    return found


BACKUP_SCHEMA = "migration_backup"


def backup_table_name(migration_id: str, table: str) -> str:
    """Where ``back_up_columns`` keeps a migration's copy of the data it destroys."""
    return f"{migration_id}__{table}"[:63]


def back_up_columns(
    conn: psycopg.Connection,
    schema: str,
    table: str,
    key: Key,
    columns: list[str],
    migration_id: str,
) -> int:
    """Copy the key's columns and ``columns`` into the backup schema (once); return the rows
    kept."""
    backup = sql.Identifier(BACKUP_SCHEMA, backup_table_name(migration_id, table))
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(BACKUP_SCHEMA))
        )
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} AS SELECT {} FROM {}").format(
                backup,
                sql.SQL(", ").join(map(sql.Identifier, [*key_columns(key), *columns])),
                sql.Identifier(schema, table),
            )
        )
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(backup)).fetchone()[0]
