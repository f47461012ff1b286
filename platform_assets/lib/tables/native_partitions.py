"""Postgres-native partitioned tables: one table per Dagster partition, replaced by a swap.

Opt-in per asset with metadata ``native_partitions: True``, read when the table is created; an
existing table's layout is read from the catalog. The parent is ``PARTITION BY RANGE`` on the
partition column for time windows, ``PARTITION BY LIST`` for static and dynamic keys (one
partition column; multi-partitions stay on the plain layout). Each Dagster partition is one
native partition named after its key (``child_name``).

Why: a ``replace_partition`` then never maintains an index row by row, whatever the table's size.
It loads a new table holding only the partition's rows, builds its primary key and indexes over
them, and only then takes the parent's lock for a swap: DETACH and DROP the old partition, rename
the new one into its place, ATTACH it (which finds the indexes already built). Readers see the old
partition until commit and wait only for the swap itself. ``append`` and ``upsert`` write through
the parent, after creating any missing partition.

The price, and why it is opt-in: Postgres enforces a primary key on a partitioned table only if
the key includes the partition column. So the same ``order_id`` may exist on two days, and an
upsert cannot move a row between partitions (the key differs). The IO manager refuses a declared
primary key without the partition column rather than widening it silently.
"""

import hashlib
import re
import uuid
from collections.abc import Callable

import adbc_driver_postgresql.dbapi as adbc

from platform_assets.lib.tables import ddl, statements
from platform_assets.lib.tables.schema import Column
from platform_assets.lib.tables.table_slice import TableSlice

NATIVE_PARTITIONS_METADATA = "native_partitions"
IS_PARTITIONED = "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass($1)"
EXISTS = "SELECT to_regclass($1) IS NOT NULL"

# Streams the write's rows into (table, schema); a schema of None means a temporary table.
LoadInto = Callable[[str, str | None], None]


class NativePartitionsError(ValueError):
    """A native-partition layout was asked for where it cannot apply."""


def child_name(table: str, key: str) -> str:
    """The native partition holding partition ``key`` of ``table``: readable, unique per key
    (a short digest of the key), at most 56 bytes, so its indexes' names (``_pkey``, ``_idx0``…)
    stay within Postgres's 63-byte limit too."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", key).strip("_")[:16]
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{table[:28]}_p_{slug}_{digest}"


def partition_by(table_slice: TableSlice) -> tuple[str, str]:
    """How the parent is partitioned: (``RANGE`` or ``LIST``, the partition column)."""
    if not table_slice.partitions:
        raise NativePartitionsError(
            f"{table_slice.qualified_name}: native partitions are for partitioned assets"
        )
    if len(table_slice.partition_columns) != 1:
        raise NativePartitionsError(
            f"{table_slice.qualified_name}: native partitions need exactly one partition column; "
            f"{list(table_slice.partition_columns)} are several (multi-partitions)"
        )
    strategy = "RANGE" if table_slice.partitions[0].window is not None else "LIST"
    return strategy, table_slice.partition_columns[0]


def check_primary_key(table_slice: TableSlice, primary_key: list[str]) -> None:
    """Refuse a primary key Postgres could not enforce across native partitions."""
    column = table_slice.partition_columns[0]
    if primary_key and column not in primary_key:
        raise NativePartitionsError(
            f"{table_slice.qualified_name}: with native partitions the primary key must include "
            f"the partition column; declare primary_key {[*primary_key, column]}"
        )


def is_partitioned(cursor: adbc.Cursor, table_name: str) -> bool:
    """Whether the existing table ``table_name`` (quoted) is a native partitioned table."""
    cursor.execute(IS_PARTITIONED, parameters=(table_name,))
    return bool(cursor.fetchone()[0])


def _exists(cursor: adbc.Cursor, schema: str, table: str) -> bool:
    cursor.execute(EXISTS, parameters=(statements.table_identifier(schema, table),))
    return bool(cursor.fetchone()[0])


def ensure_partitions(cursor: adbc.Cursor, table_slice: TableSlice, pg_type: str) -> None:
    """Create an empty native partition for each of the slice's partitions that has none, so
    rows written through the parent have somewhere to go."""
    schema, table = table_slice.schema, table_slice.table
    for partition in table_slice.partitions:
        child = child_name(table, partition.key)
        if not _exists(cursor, schema, child):
            cursor.execute(
                ddl.native_partition_ddl("create", schema, table, child, partition, pg_type)
            )


def replace_partitions(
    cursor: adbc.Cursor,
    table_slice: TableSlice,
    columns: list[Column],
    primary_key: list[str],
    indexes: list[list[str]],
    load: LoadInto,
    pg_types: dict[str, str],
) -> dict[str, int]:
    """Swap in a new native partition for each of the slice's partitions; return the rows each
    old one held. ``load`` streams the write's rows into the table it is given."""
    fresh = _load_fresh_tables(cursor, table_slice, columns, load, pg_types)
    # Postgres names a new table's key "<table>_pkey"; the indexes are numbered. Both are renamed
    # after the partition once the old partition (and so its index names) is gone.
    index_suffixes = (["pkey"] if primary_key else []) + [f"idx{n}" for n in range(len(indexes))]
    for new in fresh.values():
        if primary_key:
            cursor.execute(ddl.add_primary_key(table_slice.schema, new, primary_key))
        for n, index_columns in enumerate(indexes):
            cursor.execute(
                ddl.create_index(table_slice.schema, new, index_columns, name=f"{new}_idx{n}")
            )
    replaced = {
        partition.key: _row_count(
            cursor, table_slice.schema, child_name(table_slice.table, partition.key)
        )
        for partition in table_slice.partitions
    }
    _swap(
        cursor,
        table_slice,
        fresh,
        {key for key, rows in replaced.items() if rows is not None},
        index_suffixes,
        pg_types[table_slice.partition_columns[0]],
    )
    return {key: rows or 0 for key, rows in replaced.items()}


def _load_fresh_tables(
    cursor: adbc.Cursor,
    table_slice: TableSlice,
    columns: list[Column],
    load: LoadInto,
    pg_types: dict[str, str],
) -> dict[str, str]:
    """A new table per partition holding its rows, and nothing else yet: {key: table name}.

    One partition is loaded straight into its table; a range into one temporary table, whose
    rows each partition's table then takes its own share of.
    """
    schema, table = table_slice.schema, table_slice.table
    suffix = uuid.uuid4().hex[:10]
    fresh = {p.key: f"{table[:30]}_new_{suffix}_{n}" for n, p in enumerate(table_slice.partitions)}
    for new in fresh.values():
        cursor.execute(ddl.create_table(schema, new, columns, []))
    if len(fresh) == 1:
        load(next(iter(fresh.values())), schema)
        return fresh
    staging = f"staging_{suffix}"
    cursor.execute(ddl.create_temporary_table(staging, columns))
    load(staging, None)
    names = [column.name for column in columns]
    for partition in table_slice.partitions:
        query, params = statements.copy_partition_rows(
            table_slice, partition, pg_types, staging, fresh[partition.key], names
        )
        cursor.execute(query, parameters=params or None)
    return fresh


def _row_count(cursor: adbc.Cursor, schema: str, table: str) -> int | None:
    """Rows in ``table``; ``None`` if there is no such table."""
    if not _exists(cursor, schema, table):
        return None
    cursor.execute(statements.count_rows(schema, table))
    return int(cursor.fetchone()[0])


def _swap(
    cursor: adbc.Cursor,
    table_slice: TableSlice,
    fresh: dict[str, str],
    existing: set[str],
    index_suffixes: list[str],
    pg_type: str,
) -> None:
    """Put each fresh table in place of its partition's old one (the keys in ``existing`` have
    one), under the parent's lock, taken only now and only on the parent itself."""
    schema, table = table_slice.schema, table_slice.table
    cursor.execute(ddl.lock_exclusive(schema, table))
    for partition in table_slice.partitions:
        old, new = child_name(table, partition.key), fresh[partition.key]
        if partition.key in existing:
            for statement in ddl.detach_and_drop(schema, table, old):
                cursor.execute(statement)
        cursor.execute(ddl.rename_table(schema, new, old))
        for index_suffix in index_suffixes:
            cursor.execute(
                ddl.rename_index(schema, f"{new}_{index_suffix}", f"{old}_{index_suffix}")
            )
        cursor.execute(ddl.native_partition_ddl("attach", schema, table, old, partition, pg_type))
