"""Migrations planned from the difference between a dataset's spec and its table.

A spec may change in ways its table cannot absorb in place: a column's type (a smaller scale,
another type), a column no longer declared. A load then fails naming the change; this module plans
the migration that resolves it from the safe patterns, for the migrate job to show in its dry run
and apply once confirmed:

- a type change is add / migrate / swap (``change_column_type``): ``<column>__new`` of the declared
  type, kept in sync by a trigger, backfilled in key batches, swapped in one statement. A pre-check
  refuses it unless every stored value converts and converts back unchanged (a smaller scale that
  would round a stored value is refused, never applied); the post-validation checks the new type.
- a column no longer declared (the ``__old`` one a swap leaves too) is dropped
  (``drop_column``): backed up first, restored by the rollback.
- a required (or key) column the table allows nulls in is made NOT NULL (``set_not_null``),
  refused while a row holds a null.
- a primary key no longer declared is dropped (``drop_primary_key``); another key, or a key for a
  keyless table, is built concurrently and swapped in (``change_primary_key``), refused unless
  the new key is unique and never missing.

Backfills go in batches by the table's primary key, of any number of columns, or by physical row
order where it has none (``lib/migrations/batches.py``). A change of partition column and a key
change of a natively partitioned table are not planned: they are reported for a hand-written
migration. A column dropped from a table without a primary key is planned with a pre-check that
rows agreeing on every other column agree on it too, so that a rollback restores every value.
One planned migration is applied per run; the next dry run plans the next step from the table as
it then is.
"""

import hashlib
from dataclasses import dataclass, replace

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.stored_schema import stored_schema
from platform_assets.lib.migrations.model import PLANNED_PREFIX, SPEC_CHAIN, Check, Migration
from platform_assets.lib.migrations.patterns import (
    change_column_type,
    change_primary_key,
    drop_column,
    drop_primary_key,
    keyed_by,
    set_not_null,
)
from platform_assets.lib.tables import layout, native_partitions, statements
from platform_assets.lib.tables.schema import Column, Mismatch, compare_columns, table_columns
from platform_assets.lib.tables.table_slice import TableSlice


@dataclass(frozen=True)
class SpecPlan:
    """The migrations planned from the specs, in the order to apply them, and the changes that
    need a hand-written migration (each saying why)."""

    migrations: list[Migration]
    unplanned: list[str]


def _planned_id(spec: DatasetSpec, *change: object) -> str:
    """A planned migration's id, from the change it makes: planned again from the same table and
    spec, it is the same migration (so its ledger entry resumes it)."""
    about = "|".join([spec.name, *map(str, change)])
    return f"{PLANNED_PREFIX}{spec.name}_{hashlib.sha256(about.encode()).hexdigest()[:12]}"


def _fingerprinted(migration: Migration) -> Migration:
    """The migration with the sha256 of what it runs, as the ledger records and compares."""
    text = "\n".join(
        [*migration.statements(), *migration.down, *(c.query for c in migration.pre_checks)]
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return replace(migration, source_sha256=digest, chain=SPEC_CHAIN)


def _converts_unchanged(table_slice: TableSlice, change: Mismatch) -> Check:
    """Every stored value of the column converts to the declared type and back unchanged."""
    column = sql.Identifier(change.column)
    query = sql.SQL(
        "SELECT NOT EXISTS (SELECT 1 FROM {table} WHERE {column} IS NOT NULL AND CASE"
        " WHEN pg_input_is_valid({column}::text, {declared}) THEN"
        " ({column}::text::{declared_type})::{stored_type} IS DISTINCT FROM {column}"
        " ELSE true END)"
    ).format(
        table=sql.Identifier(table_slice.schema, table_slice.table),
        column=column,
        declared=sql.Literal(change.declared),
        declared_type=sql.SQL(change.declared),  # a type name from the spec's own closed set
        stored_type=sql.SQL(change.stored),  # as the catalog names it (format_type)
    )
    return Check(
        f"every stored {change.column} converts to {change.declared} and back unchanged",
        query.as_string(),
    )


def _still_stored_as(table_slice: TableSlice, change: Mismatch) -> Check:
    """The column is still of the type the plan was made from (a stale plan is refused)."""
    query = sql.SQL(
        "SELECT format_type(atttypid, atttypmod) = {} FROM pg_attribute"
        " WHERE attrelid = {}::regclass AND attname = {} AND NOT attisdropped"
    ).format(
        sql.Literal(change.stored),
        sql.Literal(statements.table_identifier(table_slice.schema, table_slice.table)),
        sql.Literal(change.column),
    )
    return Check(f"{change.column} is still {change.stored}", query.as_string())


def plan_dataset(cursor: adbc.Cursor, spec: DatasetSpec) -> SpecPlan:
    """The migrations that make the dataset's existing table hold what its spec declares."""
    table_slice = dataset_table_slice(spec, [])
    schema, table = table_slice.schema, table_slice.table
    existing = table_columns(cursor, schema, table)
    if not existing:
        return SpecPlan([], [])
    table_name = statements.table_identifier(schema, table)
    partition_columns = [spec.partition_column] if spec.partition_column else []
    # Batches go by the table's own primary key, whatever its columns, or by physical row order.
    key = layout.table_primary_key(cursor, table_name)
    undeclared_key = bool(key) and not spec.primary_key  # removed, or now a dedupe key: planned
    # Another key, or a key for a keyless table: planned, but for a natively partitioned table,
    # whose unique index cannot be built concurrently.
    rekeyed = bool(spec.primary_key) and list(key) != spec.primary_key
    rekeyed = rekeyed and not native_partitions.is_partitioned(cursor, table_name)
    unplanned, _ = layout.differences(
        cursor,
        table_name,
        partition_columns,
        list(key) if undeclared_key or rekeyed else spec.primary_key,
    )
    try:
        declared = stored_schema(spec)
    except Exception as error:  # a user's transform: whatever it raises, the plan says why
        return SpecPlan([], [f"{spec.name}: its transform's columns are unknown: {error!r}"])
    _, mismatches = compare_columns(existing, declared)
    changed = [m for m in mismatches if m.declared is not None]
    staged = {f"{m.column}__new"[:63] for m in changed}  # a swap under way: not a dropped column
    dropped = [m for m in mismatches if m.declared is None and m.column not in staged]
    planned = []
    for change in changed:
        migration = change_column_type(
            id=_planned_id(spec, change.column, change.stored, change.declared),
            description=(
                f"{spec.name}: {change.column} from {change.stored} to {change.declared},"
                " as its spec declares (planned from the spec)"
            ),
            schema=schema,
            table=table,
            key=key,
            column=change.column,
            new_type=change.declared,  # type: ignore[arg-type]
        )
        checks = [_still_stored_as(table_slice, change), _converts_unchanged(table_slice, change)]
        planned.append(_fingerprinted(replace(migration, pre_checks=checks)))
    for gone in dropped:
        # A keyless table's rows are told apart by every other column: a rollback restores the
        # value to the rows agreeing on them, which the pre-check proves is one value each.
        others = key or tuple(c.name for c in existing if c.name != gone.column)
        migration = drop_column(
            id=_planned_id(spec, gone.column, gone.stored, gone.declared),
            description=(
                f"{spec.name}: drop {gone.column} ({gone.stored}), which its spec no longer"
                " declares (planned from the spec; backed up first)"
            ),
            schema=schema,
            table=table,
            key=others,
            column=gone.column,
            pg_type=gone.stored,
            by_row=not key,
        )
        checks = [] if key else [_determined_by(table_slice, others, gone.column)]
        planned.append(_fingerprinted(replace(migration, pre_checks=checks)))
    changing = {m.column for m in changed}
    for column in existing:
        if column.name in _not_null_declared(spec) - changing and not column.not_null:
            migration = set_not_null(
                id=_planned_id(spec, column.name, "NOT NULL"),
                description=(
                    f"{spec.name}: {column.name} NOT NULL, as its spec declares it required"
                    " (planned from the spec; refused while a row holds a null)"
                ),
                schema=schema,
                table=table,
                key=key,
                column=column.name,
            )
            planned.append(_fingerprinted(migration))
    if undeclared_key:
        migration = drop_primary_key(
            id=_planned_id(spec, "drop primary key", *key),
            description=(
                f"{spec.name}: drop the primary key {list(key)}, which its spec no longer declares"
                f"{f' (its dedupe key is {spec.dedupe_key})' if spec.dedupe_key else ''};"
                " planned from the spec, rebuilt by the rollback"
            ),
            schema=schema,
            table=table,
            key=key,
            constraint=layout.primary_key_constraint(cursor, table_name),
        )
        planned.append(_fingerprinted(replace(migration, pre_checks=[_keyed_by(table_slice, key)])))
    if rekeyed:
        planned.append(_rekeyed(cursor, spec, table_slice, key, existing))
    return SpecPlan(planned, unplanned)


def _rekeyed(
    cursor: adbc.Cursor,
    spec: DatasetSpec,
    table_slice: TableSlice,
    key: tuple[str, ...],
    existing: list[Column],
) -> Migration:
    """The migration keying the table by the spec's primary key, refused unless the new key is
    present in every row and unique."""
    table_name = statements.table_identifier(table_slice.schema, table_slice.table)
    new_key = tuple(spec.primary_key)
    target = sql.Identifier(table_slice.schema, table_slice.table)
    columns = sql.SQL(", ").join(map(sql.Identifier, new_key))
    missing = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in new_key)
    migration = change_primary_key(
        id=_planned_id(spec, "primary key", *key, "to", *new_key),
        description=(
            f"{spec.name}: key the table by {list(new_key)}"
            f" ({f'instead of {list(key)}' if key else 'it has none'}), as its spec declares"
            " (planned from the spec; refused unless the new key is unique and never missing)"
        ),
        schema=table_slice.schema,
        table=table_slice.table,
        old_key=key,
        old_constraint=layout.primary_key_constraint(cursor, table_name) if key else None,
        new_key=new_key,
        nullable=[c.name for c in existing if c.name in new_key and not c.not_null],
    )
    checks = [
        _keyed_by(table_slice, key),
        Check(
            f"no row lacks a part of {list(new_key)}",
            sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {} WHERE {})")
            .format(target, missing)
            .as_string(),
        ),
        Check(
            f"no two rows share {list(new_key)}",
            sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {} GROUP BY {} HAVING count(*) > 1)")
            .format(target, columns)
            .as_string(),
        ),
    ]
    return _fingerprinted(replace(migration, pre_checks=checks))


def _determined_by(table_slice: TableSlice, others: tuple[str, ...], column: str) -> Check:
    """No two rows agree on ``others`` but differ in ``column`` (nulls included): a rollback can
    then give every row its value back."""
    query = sql.SQL(
        "SELECT NOT EXISTS (SELECT 1 FROM {} GROUP BY {} HAVING count(DISTINCT ROW({})::text) > 1)"
    ).format(
        sql.Identifier(table_slice.schema, table_slice.table),
        sql.SQL(", ").join(map(sql.Identifier, others)),
        sql.Identifier(column),
    )
    return Check(
        f"rows agreeing on every other column agree on {column} (so a rollback restores it)",
        query.as_string(),
    )


def _not_null_declared(spec: DatasetSpec) -> set[str]:
    """The columns the spec's table must hold no null in: the required ones and the key's."""
    return {c.name for c in spec.columns if c.required} | set(spec.primary_key)


def _keyed_by(table_slice: TableSlice, key: tuple[str, ...]) -> Check:
    """The table's primary key is still the one the plan was made from."""
    return keyed_by(
        table_slice.schema, table_slice.table, key, f"the primary key is still {list(key)}"
    )


def plan_from_specs(conn: adbc.Connection, specs: list[DatasetSpec]) -> SpecPlan:
    """Every dataset's planned migrations and unplanned changes, datasets in spec order."""
    migrations, unplanned = [], []
    cursor = conn.cursor()
    try:
        for spec in specs:
            plan = plan_dataset(cursor, spec)
            migrations.extend(plan.migrations)
            unplanned.extend(plan.unplanned)
    finally:
        cursor.close()
        conn.rollback()
    return SpecPlan(migrations, unplanned)
