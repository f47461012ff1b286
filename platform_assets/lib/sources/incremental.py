"""Reading a source table incrementally by a ``(updated_at, key)`` high-water mark."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
from psycopg import sql

from platform_assets.lib.frames import arrow_to_frame, frame_to_arrow
from platform_assets.lib.warehouse.resource import Warehouse

BEFORE_EVERYTHING = {"updated_at": datetime(1, 1, 1, tzinfo=UTC).isoformat(), "key": -(2**63)}


def changed_row_chunks(
    warehouse: Warehouse,
    schema: str,
    table: str,
    mark: dict | None,
    limit: int,
    safety_lag_s: float,
    chunk_rows: int,
    updated_at: str = "updated_at",
    key: str = "id",
) -> Iterator[tuple[pa.Table, dict | None]]:
    """Up to ``limit`` rows changed after ``mark``, oldest first, in chunks of ``chunk_rows``,
    each with the mark after its last row (None for the single empty chunk of a quiet source).

    One query in one snapshot, streamed: a row changed while the extract runs is not seen twice,
    and memory holds one chunk. Rows younger than ``safety_lag_s`` are left for the next extract:
    a transaction that started earlier may still commit rows stamped before them, and a high-water
    mark must never pass a row that is not visible yet.
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
        reader = cursor.fetch_record_batch()
        emitted = False
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_rows):
                # Through pandas and back: numeric and jsonb arrive as text extension types.
                rows = arrow_to_frame(pa.Table.from_batches([batch.slice(start, chunk_rows)]))
                last = rows.iloc[-1]
                emitted = True
                yield (
                    frame_to_arrow(rows),
                    {"updated_at": last[updated_at].isoformat(), "key": int(last[key])},
                )
        if not emitted:
            yield frame_to_arrow(arrow_to_frame(reader.schema.empty_table())), None


def holds_high_water(
    warehouse: Warehouse,
    schema: str,
    table: str,
    mark: dict,
    updated_at: str = "updated_at",
    key: str = "id",
) -> bool:
    """Whether the extracted table holds a row at or past the high-water ``mark``: if not, the
    checkpoint claims rows that were never stored, and the next extract would skip them."""
    query = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE ({ts}, {key}) >= (%s::timestamptz, %s::bigint))"
    ).format(
        table=sql.Identifier(schema, table), ts=sql.Identifier(updated_at), key=sql.Identifier(key)
    )
    with warehouse.connection() as conn:
        exists = "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))"
        if conn.execute(exists, (schema, table)).fetchone()[0] is None:
            return False
        high_water = (datetime.fromisoformat(mark["updated_at"]), int(mark["key"]))
        return bool(conn.execute(query, high_water).fetchone()[0])
