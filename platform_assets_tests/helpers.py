"""Queries the tests use to look at what actually landed in Postgres."""

from psycopg import sql

from platform_assets.lib.postgres.warehouse import Warehouse


def fetch_all(warehouse: Warehouse, query: sql.Composable, params: tuple = ()) -> list[tuple]:
    """Run ``query`` and return every row."""
    with warehouse.connection() as conn:
        return conn.execute(query, params).fetchall()


def table_checksum(
    warehouse: Warehouse, schema: str, table: str, column: str | None = None, value: object = None
) -> str:
    """md5 over every row of the table (or those where ``column = value``), in a stable order."""
    predicate = sql.SQL("{} = %s").format(sql.Identifier(column)) if column else sql.SQL("TRUE")
    query = sql.SQL(
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} AS t WHERE {}"
    ).format(sql.Identifier(schema, table), predicate)
    return fetch_all(warehouse, query, (value,) if column else ())[0][0]


def row_count(warehouse: Warehouse, schema: str, table: str) -> int:
    """Number of rows in ``schema.table``."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    return fetch_all(warehouse, query)[0][0]
