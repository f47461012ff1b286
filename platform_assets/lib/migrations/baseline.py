"""Before-and-after evidence: row count, null counts and a checksum of the table's columns."""

import psycopg
from psycopg import sql


def capture_baseline(conn: psycopg.Connection, schema: str, table: str, key: str) -> dict:
    """Row count, per-column null counts and an ordered checksum of every current column."""
    columns = [
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        ).fetchall()
    ]
    if not columns:
        raise LookupError(f"table {schema}.{table} does not exist")
    return {"columns": columns, **measure(conn, schema, table, key, columns)}


def measure(
    conn: psycopg.Connection, schema: str, table: str, key: str, columns: list[str]
) -> dict:
    """The same figures as the baseline, for ``columns`` only (so new columns do not count)."""
    row = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    nulls = sql.SQL(", ").join(
        sql.SQL("count(*) - count({})").format(sql.Identifier(c)) for c in columns
    )
    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg({row}, '|' ORDER BY {key}), '')), {nulls}"
        " FROM {table}"
    ).format(row=row, key=sql.Identifier(key), nulls=nulls, table=sql.Identifier(schema, table))
    count, checksum, *null_counts = conn.execute(query).fetchone()
    return {
        "row_count": count,
        "checksum": checksum,
        "null_counts": dict(zip(columns, null_counts, strict=True)),
    }


def differences(baseline: dict, now: dict) -> list[str]:
    """How ``now`` differs from ``baseline`` (empty when the data is as it was)."""
    found = []
    for figure in ("columns", "row_count", "checksum", "null_counts"):
        if figure in now and now[figure] != baseline[figure]:
            found.append(f"{figure}: before {baseline[figure]}, now {now[figure]}")
    return found
