"""What the platform's reader role may read of a table: every column but the personal data.

The reader is granted ``SELECT`` on the owner's tables by default privileges (``server.roles``).
A table with columns its dataset tags ``pii`` gets column privileges instead: the reader may
select every other column by name, and cannot read those at all (``SELECT *`` is refused, so
nothing reads them by accident). The grants are compared with the catalog first: a write changes
them only when they differ (a new table, a new column, a changed tag), so a steady-state write
takes no lock for them.
"""

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.lib.server.roles import READER
from platform_assets.lib.tables.statements import table_identifier

# The definition metadata naming a table's columns of personal data (a dataset's ``pii`` tags).
PII_COLUMNS_METADATA = "pii_columns"
_GRANTS = (
    "SELECT a.attname, has_column_privilege($1, c.oid, a.attnum, 'SELECT'),"
    " has_table_privilege($1, c.oid, 'SELECT')"
    " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
    " WHERE c.oid = to_regclass($2) AND a.attnum > 0 AND NOT a.attisdropped"
    " AND to_regrole($1) IS NOT NULL ORDER BY a.attnum"
)


def hide_from_reader(cursor: adbc.Cursor, schema: str, table: str, hidden: list[str]) -> None:
    """Let the reader select every column of ``schema.table`` but ``hidden`` (nothing to do on a
    server without the reader role, or when the grants are already so)."""
    if not hidden:
        return
    name = sql.Identifier(schema, table)
    cursor.execute(_GRANTS, parameters=(READER, table_identifier(schema, table)))
    found = cursor.fetchall()
    if not found:
        return
    visible = [column for column, _, _ in found if column not in hidden]
    granted = [column for column, column_granted, _ in found if column_granted]
    table_wide = found[0][2]
    if not table_wide and granted == visible:
        return
    reader = sql.Identifier(READER)
    cursor.execute(sql.SQL("REVOKE SELECT ON {} FROM {}").format(name, reader).as_string())
    if visible:
        columns = sql.SQL(", ").join(map(sql.Identifier, visible))
        grant = sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(columns, name, reader)
        cursor.execute(grant.as_string())
