"""Bulk loads: a write that outweighs its table drops the table's indexes and rebuilds them after.

Postgres builds an index over loaded rows several times faster than it maintains it row by row
(the manual's "Populating a Database" advice). So when a ``replace_partition`` or ``append``
write loads at least as many rows as the table already holds (a first big backfill, the rerun of
a table's one big partition) and at least ``min_rows`` of them, it:

1. takes the table's ACCESS EXCLUSIVE lock, first of all its locks on the table, so two bulk
   writers queue instead of deadlocking on a lock upgrade (``lock_timeout`` applies);
2. drops every index and index-backed constraint (primary key, unique, exclusion), keeping each
   one's definition as Postgres itself prints it (``pg_get_indexdef``, ``pg_get_constraintdef``);
3. loads, then rebuilds each under its own name before the write commits.

Nothing else changes: same table, same grants, same views, same names; a failure rolls the drop
back with everything else. The price is the lock: readers of *other* partitions wait for the
write to commit instead of reading on. That is why it is reserved for writes that outweigh the
table, and why ``bulk_load_min_rows`` (``None`` = never) is configurable per IO manager and per
asset. A table is left on the row-by-row path when rebuilding would lose something the
definitions do not carry: a foreign key pointing at one of its indexes, a clustered or
replica-identity index, an index in its own tablespace or with a comment. Native partitions and
partitioned parents are never bulk loaded (their indexes belong to the parent).

The table's size comes from the larger of ``pg_class.reltuples`` (last VACUUM, ANALYZE or CREATE
INDEX) and the statistics' live-row count, read without locking the table.
"""

from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.tables import ddl, statements

BULK_LOAD_MIN_ROWS = 100_000  # below this, maintaining the indexes costs less than the lock

ESTIMATED_ROWS = (
    "SELECT greatest(c.reltuples, pg_stat_get_live_tuples(c.oid)) FROM pg_class c"
    " WHERE c.oid = to_regclass($1) AND c.relkind = 'r' AND NOT c.relispartition"
)
TABLE_INDEXES = (
    "SELECT ic.relname, pg_get_indexdef(i.indexrelid), con.conname, pg_get_constraintdef(con.oid),"
    " (i.indisclustered OR i.indisreplident OR ic.reltablespace <> 0"
    "  OR obj_description(i.indexrelid, 'pg_class') IS NOT NULL"
    "  OR obj_description(con.oid, 'pg_constraint') IS NOT NULL"
    "  OR EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid))"
    " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
    " LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid"
    "  AND con.contype IN ('p', 'u', 'x')"
    " WHERE i.indrelid = to_regclass($1) ORDER BY ic.relname"
)


@dataclass(frozen=True)
class TableIndex:
    """One index of a table, as Postgres defines it, and how to drop and rebuild it."""

    name: str
    index_definition: str  # CREATE [UNIQUE] INDEX …, from pg_get_indexdef
    constraint: str | None = None  # the constraint it backs, if any
    constraint_definition: str | None = None  # PRIMARY KEY (…), from pg_get_constraintdef

    def drop(self, schema: str, table: str) -> str:
        """The statement dropping this index (through its constraint, if it backs one)."""
        if self.constraint is not None:
            statement = sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(schema, table), sql.Identifier(self.constraint)
            )
        else:
            statement = sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, self.name))
        return statement.as_string()

    def rebuild(self, schema: str, table: str) -> str:
        """The statement building it again: Postgres's own definition, names and all."""
        if self.constraint is not None and self.constraint_definition is not None:
            return (
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ")
                .format(sql.Identifier(schema, table), sql.Identifier(self.constraint))
                .as_string()
                + self.constraint_definition
            )
        return self.index_definition


def estimated_rows(cursor: adbc.Cursor, table_name: str) -> float | None:
    """How many rows ``table_name`` (quoted) holds, roughly; ``None`` for anything but a plain
    table. Takes no lock on the table."""
    cursor.execute(ESTIMATED_ROWS, parameters=(table_name,))
    row = cursor.fetchone()
    return None if row is None else max(float(row[0]), 0.0)


def outweighs(table_rows: float | None, rows: int, min_rows: int | None) -> bool:
    """Whether loading ``rows`` rows into a table of ``table_rows`` rows is a bulk load."""
    return (
        table_rows is not None and min_rows is not None and rows >= min_rows and table_rows <= rows
    )


def table_indexes(cursor: adbc.Cursor, schema: str, table: str) -> list[TableIndex] | None:
    """The table's indexes as Postgres defines them, or ``None`` when one carries something a
    rebuild from its definition would lose (see the module docstring)."""
    cursor.execute(TABLE_INDEXES, parameters=(statements.table_identifier(schema, table),))
    rows = cursor.fetchall()
    if any(pinned for *_, pinned in rows):
        return None
    return [TableIndex(*row[:4]) for row in rows]


def drop_indexes(cursor: adbc.Cursor, schema: str, table: str) -> tuple[str, ...]:
    """Lock the table, drop its indexes and return the statements rebuilding them.

    Returns nothing, and drops nothing, when an index carries something a rebuild would lose;
    the write then goes on under the lock it took.
    """
    cursor.execute(ddl.lock_exclusive(schema, table))
    indexes = table_indexes(cursor, schema, table)
    if indexes is None:
        return ()
    for index in indexes:
        cursor.execute(index.drop(schema, table))
    return tuple(index.rebuild(schema, table) for index in indexes)
