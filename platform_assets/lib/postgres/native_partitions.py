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

from platform_assets.lib.postgres import statements
from platform_assets.lib.postgres.table_schema import Column
from platform_assets.lib.postgres.table_slice import TableSlice

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
                statements.native_partition_ddl("create", schema, table, child, partition, pg_type)
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
    schema, table = table_slice.schema, table_slice.table
    names = [column.name for column in columns]
    suffix = uuid.uuid4().hex[:10]
    fresh = {p.key: f"{table[:30]}_new_{suffix}_{n}" for n, p in enumerate(table_slice.partitions)}
    for partition in table_slice.partitions:
        cursor.execute(statements.create_table(schema, fresh[partition.key], columns, []))
    if len(table_slice.partitions) == 1:
        load(fresh[table_slice.partitions[0].key], schema)
    else:
        staging = f"staging_{suffix}"
        cursor.execute(statements.create_temporary_table(staging, columns))
        load(staging, None)
        for partition in table_slice.partitions:
            query, params = statements.copy_partition_rows(
                table_slice, partition, pg_types, staging, fresh[partition.key], names
            )
            cursor.execute(query, parameters=params or None)
    # Postgres names a new table's key "<table>_pkey"; the indexes get numbered names. Both are
    # renamed after the partition's own name once the old partition (and its names) are gone.
    index_suffixes = (["pkey"] if primary_key else []) + [f"idx{n}" for n in range(len(indexes))]
    for new in fresh.values():
        if primary_key:
            cursor.execute(statements.add_primary_key(schema, new, primary_key))
        for n, index_columns in enumerate(indexes):
            cursor.execute(
                statements.create_index(schema, new, index_columns, name=f"{new}_idx{n}")
            )

    replaced = {}
    for partition in table_slice.partitions:
        old = child_name(table, partition.key)
        if _exists(cursor, schema, old):
            cursor.execute(statements.count_rows(schema, old))
            replaced[partition.key] = int(cursor.fetchone()[0])
        else:
            replaced[partition.key] = 0
    # The swap: the parent's lock is taken only now, and only on the parent itself.
    cursor.execute(statements.lock_exclusive(schema, table))
    pg_type = pg_types[table_slice.partition_columns[0]]
    for partition in table_slice.partitions:
        old = child_name(table, partition.key)
        if _exists(cursor, schema, old):
            for statement in statements.detach_and_drop(schema, table, old):
                cursor.execute(statement)
        cursor.execute(statements.rename_table(schema, fresh[partition.key], old))
        for index_suffix in index_suffixes:
            cursor.execute(
                statements.rename_index(
                    schema, f"{fresh[partition.key]}_{index_suffix}", f"{old}_{index_suffix}"
                )
            )
        cursor.execute(
            statements.native_partition_ddl("attach", schema, table, old, partition, pg_type)
        )
    return replaced
