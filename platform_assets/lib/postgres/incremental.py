"""Reading a source table incrementally by a ``(updated_at, key)`` high-water mark."""

from datetime import UTC, datetime

import pandas as pd
from psycopg import sql

from platform_assets.lib.postgres.frames import arrow_to_frame
from platform_assets.lib.postgres.warehouse import Warehouse

BEFORE_EVERYTHING = {"updated_at": datetime(1, 1, 1, tzinfo=UTC).isoformat(), "key": -(2**63)}


def changed_rows(
    warehouse: Warehouse,
    schema: str,
    table: str,
    mark: dict | None,
    limit: int,
    safety_lag_s: float,
    updated_at: str = "updated_at",
    key: str = "id",
) -> tuple[pd.DataFrame, dict | None]:
    """Up to ``limit`` rows changed after ``mark``, oldest first, and the mark after the last one.

    Rows younger than ``safety_lag_s`` are left for the next extract: a transaction that started
    earlier may still commit rows stamped before them, and a high-water mark must never pass a row
    that is not visible yet. The mark is None when nothing changed.
    """
    after = mark or BEFORE_EVERYTHING
    query = sql.SQL(
        "SELECT * FROM {table} WHERE ({ts}, {key}) > ($1::timestamptz, $2::bigint)"
        " AND {ts} <= now() - make_interval(secs => $3) ORDER BY {ts}, {key} LIMIT $4"
    ).format(
        table=sql.Identifier(schema, table), ts=sql.Identifier(updated_at), key=sql.Identifier(key)
    )
    with warehouse.bulk_connection() as conn, conn.cursor() as cursor:
        cursor.execute(
            query.as_string(),
            parameters=(
                datetime.fromisoformat(after["updated_at"]),
                int(after["key"]),
                float(safety_lag_s),
                int(limit),
            ),
        )
        rows = arrow_to_frame(cursor.fetch_arrow_table())
    if rows.empty:
        return rows, None
    last = rows.iloc[-1]
    return rows, {"updated_at": last[updated_at].isoformat(), "key": int(last[key])}
