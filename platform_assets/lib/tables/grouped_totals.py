"""Row counts and exact sums per partition and group, computed by the database.

Used by reconciliation checks to recount a derived table from its source independently of the
pandas code that derived it.
"""

from decimal import Decimal

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables import statements
from platform_assets.lib.tables.snapshot import column_types, read_only_snapshot
from platform_assets.lib.tables.table_slice import TableSlice


def grouped_totals(
    conn: adbc.Connection,
    table_slice: TableSlice,
    group_by: str,
    sums: list[str],
    excluding: tuple[str, list[str]] | None = None,
) -> dict[str, dict[str, dict[str, Decimal]]]:
    """``{partition: {group: {"rows": n, column: sum, ...}}}`` for each partition of
    ``table_slice``, in one statement whatever their number, leaving out rows whose
    ``excluding[0]`` is one of ``excluding[1]``. Sums are exact (``numeric``); a partition
    without rows, or an absent table, gives no groups."""
    totals: dict[str, dict[str, dict[str, Decimal]]] = {p.key: {} for p in table_slice.partitions}
    with read_only_snapshot(conn) as cursor:
        pg_types = column_types(cursor, table_slice)
        if not pg_types:
            return totals
        params = statements.Params()
        of_row = statements.PartitionOfRow(table_slice, pg_types, params)
        where = [statements.slice_predicate(table_slice, pg_types, params)]
        if excluding is not None:
            column, values = excluding
            where.append(
                sql.SQL("{} NOT IN ({})").format(sql.Identifier(column), params.add_all(values))
            )
        query = sql.SQL(
            "SELECT {partition}, {group}::text, count(*)::numeric{sums} FROM {table}"
            " WHERE ({where}) GROUP BY {grouping}, {group}"
        ).format(
            partition=of_row.select(),
            group=sql.Identifier(group_by),
            sums=sql.SQL("").join(
                sql.SQL(", coalesce(sum({}), 0)::numeric").format(sql.Identifier(c)) for c in sums
            ),
            table=sql.Identifier(table_slice.schema, table_slice.table),
            where=sql.SQL(") AND (").join(where),
            grouping=of_row.grouping(),
        )
        cursor.execute(query.as_string(), parameters=params.values)
        for row in cursor.fetchall():
            key = of_row.key_of(tuple(row[: of_row.width]))
            group, *figures = row[of_row.width :]
            totals[key][group] = dict(
                zip(["rows", *sums], (Decimal(str(v)) for v in figures), strict=True)
            )
    return totals
