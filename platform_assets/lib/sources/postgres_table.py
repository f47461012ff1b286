"""A table in a Postgres database, read incrementally by a ``(updated_at, key)`` high-water mark.

The rows changed since the last extract come out oldest first, in chunks, each with the mark after
its last row. Their fields come out as text, rendered by Postgres itself (``::text`` in a UTC
session), so the spec's parser types them exactly as it types a file's fields, and a rejected
row's payload is what the source held.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from platform_assets.lib.sources.landing_readers import RawBatch
from platform_assets.lib.warehouse.resource import Warehouse

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
BEFORE_EVERYTHING = {"updated_at": datetime(1, 1, 1, tzinfo=UTC).isoformat(), "key": -(2**63)}
# The mark's own columns in the query, typed (the declared columns come out as text).
_MARK_AT, _MARK_KEY = "__platform_mark_at", "__platform_mark_key"


class PostgresTableSource(BaseModel):
    """Rows of ``table`` (``schema.table``) in the database whose URL is in the environment
    variable ``database_url_env`` (the warehouse itself when it is unset, as for the bundled CRM).

    Each run takes the rows whose ``(updated_at_column, key_column)`` is past the last committed
    mark, at most ``max_rows_per_run``, in chunks of ``chunk_rows``. Rows changed less than
    ``safety_lag_s`` ago wait for the next run: a transaction begun earlier may still commit rows
    stamped before them, and the mark must never pass a row that is not visible yet.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["postgres_table"]
    table: str = Field(pattern=rf"^{_NAME}\.{_NAME}$")
    database_url_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    updated_at_column: str = Field(default="updated_at", pattern=rf"^{_NAME}$")
    key_column: str = Field(default="id", pattern=rf"^{_NAME}$")
    safety_lag_s: Annotated[float, Field(ge=0)] = 5.0
    chunk_rows: Annotated[int, Field(ge=1)] = 50_000
    max_rows_per_run: Annotated[int, Field(ge=1)] = 1_000_000

    @property
    def schema_and_table(self) -> tuple[str, str]:
        """The table's schema and name."""
        schema, table = self.table.split(".")
        return schema, table

    @contextmanager
    def database(self, warehouse: Warehouse) -> Iterator[Warehouse]:
        """The source database: the URL in ``database_url_env`` if that is set (its connections
        closed on leaving), else the warehouse. The URL is never logged."""
        url = os.environ.get(self.database_url_env) if self.database_url_env else None
        if not url:
            yield warehouse
            return
        source = Warehouse(database_url=url, application_name="platform_assets_extract")
        try:
            yield source
        finally:
            source.close()

    @property
    def described_database(self) -> str:
        """Where the rows come from, for logs and metadata: the variable's name, never its URL."""
        if self.database_url_env and os.environ.get(self.database_url_env):
            return f"${self.database_url_env}"
        return "the warehouse"


def changed_rows(
    source: PostgresTableSource, database: Warehouse, mark: dict | None, columns: list[str]
) -> Iterator[tuple[RawBatch, dict | None]]:
    """The ``columns`` of rows changed after ``mark`` as text, oldest first, chunked, each chunk
    with the mark after its last row (None for the single empty chunk of a quiet source).

    One query in one snapshot, streamed: a row changed while the extract runs is not seen twice,
    and memory holds one chunk. A row's reference is ``schema.table:key=<key>``.
    """
    after = mark or BEFORE_EVERYTHING
    at, key = sql.Identifier(source.updated_at_column), sql.Identifier(source.key_column)
    texts = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(name), sql.Identifier(name))
        for name in columns
    )
    query = sql.SQL(
        "SELECT {texts}, {at} AS {mark_at}, {key}::bigint AS {mark_key} FROM {table}"
        # A row with no updated_at or no key has no place in the mark's order: no extract takes
        # it, and source_rows_accounted names it (lib/dead_letters/extract_audit).
        # The mark is bound in the column's own kind of time: an aware instant for a timestamptz
        # column, a naive one (from the rows before) for a timestamp column.
        " WHERE ({at}, {key}) > ($1, $2::bigint) AND {key} IS NOT NULL"
        " AND {at} <= now() - make_interval(secs => $3)"
        # By the typed mark: a bare column name here would sort the text output column instead.
        " ORDER BY {mark_at}, {mark_key} LIMIT $4"
    ).format(
        texts=texts,
        at=at,
        key=key,
        mark_at=sql.Identifier(_MARK_AT),
        mark_key=sql.Identifier(_MARK_KEY),
        table=sql.Identifier(*source.schema_and_table),
    )
    parameters = (
        datetime.fromisoformat(after["updated_at"]),
        int(after["key"]),
        float(source.safety_lag_s),
        int(source.max_rows_per_run),
    )
    with database.bulk_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")  # timestamptz as text: in UTC, whatever the role's
        cursor.execute(query.as_string(), parameters=parameters)
        emitted = False
        for batch in cursor.fetch_record_batch():
            for start in range(0, batch.num_rows, source.chunk_rows):
                piece = batch.slice(start, source.chunk_rows)
                keys = piece.column(_MARK_KEY).to_numpy(zero_copy_only=False)
                emitted = True
                yield (
                    RawBatch(
                        pa.table({name: piece.column(name) for name in columns}),
                        source.table,
                        keys.astype(np.int64),
                        position_prefix="key=",
                    ),
                    {
                        "updated_at": piece.column(_MARK_AT)[-1].as_py().isoformat(),
                        "key": int(keys[-1]),
                    },
                )
        if not emitted:
            empty = pa.table({name: pa.array([], pa.string()) for name in columns})
            yield RawBatch(empty, source.table, np.empty(0, np.int64)), None
