"""The batch statement of a backfill, for a table with a key of any number of columns or with none.

Every batch statement has the same contract (``BatchedUpdate``): given ``%(after)s``, the position
the last batch reached (``jsonb``; NULL to start from the beginning), and ``%(limit)s``, it
updates the next rows still pending in one statement, taking them with ``FOR UPDATE SKIP LOCKED``,
and returns one row: how many rows it updated and the position to continue after, or NULL once
the pass has reached the end of the table. The executor records the position in the ledger in the
batch's own transaction, so a killed run resumes after the last committed batch.

- **By key** (keyset pagination): the position is the last row's key as a JSON object, compared
  as a row value ``(a, b, c) > (…)`` so that the primary key's index serves every batch, whatever
  its arity. ``jsonb_populate_record`` over the table's own row type converts it back to each
  column's type exactly (numbers are JSON numerics, times ISO text with their offset).
- **By physical order**, for a table without a key: the position is a page number, and a batch
  takes the pending rows of the next pages (a TID range scan, PostgreSQL 14+), as many pages as
  hold about ``limit`` rows by the table's statistics. A row updated moves to another page, but no
  longer matches the pending condition, so no row is updated twice; the pass ends at the table's
  last page.
"""

from psycopg import sql


def keyset_batch(
    schema: str,
    table: str,
    key: tuple[str, ...],
    assignments: sql.Composable,
    pending: sql.Composable,
) -> str:
    """The next ``limit`` pending rows after the position, in the order of ``key``'s columns."""
    target = sql.Identifier(schema, table)
    columns = [sql.Identifier(name) for name in key]

    def listed(prefix: str, suffix: str = "") -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL(prefix) + c + sql.SQL(suffix) for c in columns)

    return (
        sql.SQL(
            "WITH batch AS (SELECT {t_key} FROM {table} AS t"
            " WHERE (%(after)s::jsonb IS NULL OR ({t_key}) > (SELECT {p_key}"
            " FROM jsonb_populate_record(NULL::{table}, %(after)s::jsonb) AS p))"
            " AND ({pending}) ORDER BY {t_key} LIMIT %(limit)s FOR UPDATE SKIP LOCKED),"
            " updated AS (UPDATE {table} AS t SET {assignments} FROM batch"
            " WHERE ({t_key}) = ({batch_key}) RETURNING 1)"
            " SELECT (SELECT count(*) FROM updated),"
            " (SELECT jsonb_build_object({as_json}) FROM batch ORDER BY {descending} LIMIT 1)"
        )
        .format(
            t_key=listed("t."),
            p_key=listed("p."),
            batch_key=listed("batch."),
            as_json=sql.SQL(", ").join(
                sql.SQL("{}, {}").format(sql.Literal(name), sql.Identifier(name)) for name in key
            ),
            descending=listed("", " DESC"),
            table=target,
            pending=pending,
            assignments=assignments,
        )
        .as_string()
    )


def page_batch(
    schema: str, table: str, assignments: sql.Composable, pending: sql.Composable
) -> str:
    """The pending rows of the next pages after the position, for a table without a key."""
    target = sql.Identifier(schema, table)
    return (
        sql.SQL(
            "WITH span AS (SELECT coalesce((%(after)s::jsonb ->> 'page')::bigint, 0) AS first_page,"
            " greatest(1, ceil(%(limit)s * greatest(c.relpages, 1)"
            " / greatest(c.reltuples, 1)))::bigint AS pages,"
            " pg_relation_size(c.oid) / current_setting('block_size')::bigint AS table_pages"
            " FROM pg_class AS c WHERE c.oid = {regclass}::regclass),"
            " batch AS (SELECT t.ctid AS row_id FROM {table} AS t"
            " WHERE t.ctid >= format('(%%s,0)', (SELECT first_page FROM span))::tid"
            " AND t.ctid < format('(%%s,0)', (SELECT first_page + pages FROM span))::tid"
            " AND ({pending}) FOR UPDATE OF t SKIP LOCKED),"
            " updated AS (UPDATE {table} AS t SET {assignments}"
            " WHERE t.ctid = ANY (ARRAY(SELECT row_id FROM batch)) RETURNING 1)"
            " SELECT (SELECT count(*) FROM updated), CASE WHEN first_page < table_pages"
            " THEN jsonb_build_object('page', first_page + pages) END FROM span"
        )
        .format(
            regclass=sql.Literal(target.as_string()),
            table=target,
            pending=pending,
            assignments=assignments,
        )
        .as_string()
    )


def batch_statement(
    schema: str,
    table: str,
    key: tuple[str, ...],
    assignments: sql.Composable,
    pending: sql.Composable,
) -> str:
    """The batch statement for the table's key (``()`` for none: by physical order)."""
    if key:
        return keyset_batch(schema, table, key, assignments, pending)
    return page_batch(schema, table, assignments, pending)
