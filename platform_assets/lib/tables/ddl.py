"""The DDL the IO manager runs: creating, altering, indexing, swapping and partitioning tables.

Names are quoted by psycopg's ``sql.Identifier``. DDL takes no parameters, so the only values in it
(native partition bounds) are ``sql.Literal``s rendered by the driver.
"""

from psycopg import sql

from platform_assets.lib.tables.schema import Column
from platform_assets.lib.tables.statements import key_value, names, render, window_bounds
from platform_assets.lib.tables.table_slice import PartitionSlice


def create_schema(schema: str) -> str:
    """CREATE SCHEMA IF NOT EXISTS for ``schema``."""
    return render(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def _column_definitions(columns: list[Column]) -> list[sql.Composable]:
    return [
        sql.SQL("{} {}{}").format(
            sql.Identifier(column.name),
            sql.SQL(column.pg_type),
            sql.SQL(" NOT NULL" if column.not_null else ""),
        )
        for column in columns
    ]


def create_table(
    schema: str,
    table: str,
    columns: list[Column],
    primary_key: list[str],
    partition_by: tuple[str, str] | None = None,
) -> str:
    """CREATE TABLE with the given columns and optional primary key; ``partition_by`` =
    (``RANGE`` or ``LIST``, column) makes it a Postgres-native partitioned table."""
    parts = _column_definitions(columns)
    if primary_key:
        parts.append(sql.SQL("PRIMARY KEY ({})").format(names(primary_key)))
    statement = sql.SQL("CREATE TABLE {} ({})").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(parts)
    )
    if partition_by is not None:
        strategy, column = partition_by
        if strategy not in ("RANGE", "LIST"):
            raise ValueError(f"partition strategy {strategy!r} is not RANGE or LIST")
        statement = sql.SQL("{} PARTITION BY {} ({})").format(
            statement, sql.SQL(strategy), sql.Identifier(column)
        )
    return render(statement)


def add_primary_key(schema: str, table: str, primary_key: list[str]) -> str:
    """ALTER TABLE … ADD PRIMARY KEY: builds the unique index over the rows already loaded."""
    return render(
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
            sql.Identifier(schema, table), names(primary_key)
        )
    )


INDEX_METHODS = ("btree", "brin")


def create_index(
    schema: str, table: str, columns: list[str], method: str = "btree", name: str | None = None
) -> str:
    """An index on ``columns``, named ``name`` or else after the table and columns (kept under
    Postgres's 63-byte limit); an index of that name already there is kept."""
    if method not in INDEX_METHODS:
        raise ValueError(f"index method {method!r} is not one of {INDEX_METHODS}")
    name = name or f"{table[:30]}_{'_'.join(columns)[:24]}_idx"
    return render(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING {} ({})").format(
            sql.Identifier(name), sql.Identifier(schema, table), sql.SQL(method), names(columns)
        )
    )


def rename_index(schema: str, index: str, new_name: str) -> str:
    """ALTER INDEX … RENAME TO (a constraint's index renames the constraint too)."""
    return render(
        sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(schema, index), sql.Identifier(new_name)
        )
    )


def add_column(schema: str, table: str, column: Column) -> str:
    """ALTER TABLE … ADD COLUMN (nullable, no default: a catalog-only change)."""
    return render(
        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
            sql.Identifier(schema, table), sql.Identifier(column.name), sql.SQL(column.pg_type)
        )
    )


def drop_not_null(schema: str, table: str, column: str) -> str:
    """ALTER TABLE … ALTER COLUMN … DROP NOT NULL: catalog-only, no value changes."""
    return render(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
            sql.Identifier(schema, table), sql.Identifier(column)
        )
    )


def alter_column_type(schema: str, table: str, column: Column) -> str:
    """ALTER TABLE … ALTER COLUMN … TYPE: used only for safe widenings (see ``tables.schema``)."""
    return render(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
            sql.Identifier(schema, table), sql.Identifier(column.name), sql.SQL(column.pg_type)
        )
    )


def create_staging_like(
    schema: str, table: str, staging: str, temporary: bool, with_indexes: bool = True
) -> str:
    """A new empty table shaped like the target (temporary ones vanish at commit; a permanent one
    takes defaults, constraints, comments… and, ``with_indexes``, the indexes too)."""
    if temporary:
        return render(
            sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                sql.Identifier(staging), sql.Identifier(schema, table)
            )
        )
    including = "INCLUDING ALL" if with_indexes else "INCLUDING ALL EXCLUDING INDEXES"
    return render(
        sql.SQL("CREATE TABLE {} (LIKE {} {})").format(
            sql.Identifier(schema, staging), sql.Identifier(schema, table), sql.SQL(including)
        )
    )


def swap_tables(schema: str, table: str, staging: str, retired: str) -> list[str]:
    """Put ``staging`` in place of ``table`` and drop the old one (run inside one transaction)."""
    return [
        render(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, table), sql.Identifier(retired)
            )
        ),
        render(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, staging), sql.Identifier(table)
            )
        ),
        render(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, retired))),
    ]


def drop_table(schema: str, table: str) -> str:
    """DROP the table; without CASCADE, so a view that depends on it makes the DROP fail."""
    return render(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, table)))


def lock_exclusive(schema: str, table: str) -> str:
    """LOCK the table (only the table itself, not a partitioned table's partitions) against
    everyone until the transaction ends."""
    return render(
        sql.SQL("LOCK TABLE ONLY {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(schema, table))
    )


def partition_bound(partition: PartitionSlice, pg_type: str) -> sql.Composable:
    """``FOR VALUES …`` of a native partition holding exactly ``partition``'s rows.

    DDL takes no bind parameters, so the bounds are literals quoted by the driver
    (``sql.Literal``), typed like the partition column.
    """
    if partition.window is not None:
        low, high = window_bounds(partition.window, pg_type)
        return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(sql.Literal(low), sql.Literal(high))
    (value,) = partition.values or ()
    return sql.SQL("FOR VALUES IN ({})").format(sql.Literal(key_value(value, pg_type)))


_NATIVE_PARTITION_DDL = {
    # ATTACH builds the indexes the parent has and the child lacks.
    "attach": "ALTER TABLE {parent} ATTACH PARTITION {child} {bound}",
    "create": "CREATE TABLE IF NOT EXISTS {child} PARTITION OF {parent} {bound}",
}


def native_partition_ddl(
    action: str, schema: str, parent: str, child: str, partition: PartitionSlice, pg_type: str
) -> str:
    """``attach`` table ``child`` to ``parent`` as ``partition``'s native partition, or
    ``create`` it empty as one (unless a table of that name exists)."""
    return render(
        sql.SQL(_NATIVE_PARTITION_DDL[action]).format(
            parent=sql.Identifier(schema, parent),
            child=sql.Identifier(schema, child),
            bound=partition_bound(partition, pg_type),
        )
    )


def detach_and_drop(schema: str, parent: str, child: str) -> list[str]:
    """Take the native partition ``child`` out of ``parent`` and drop it."""
    return [
        render(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(schema, parent), sql.Identifier(schema, child)
            )
        ),
        render(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, child))),
    ]


def rename_table(schema: str, table: str, new_name: str) -> str:
    """ALTER TABLE … RENAME TO (same schema)."""
    return render(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(schema, table), sql.Identifier(new_name)
        )
    )


def create_temporary_table(table: str, columns: list[Column]) -> str:
    """A temporary table with the given columns, dropped at commit. Declared column by column,
    not ``LIKE`` another table, so it takes no lock on any table."""
    return render(
        sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            sql.Identifier(table), sql.SQL(", ").join(_column_definitions(columns))
        )
    )
