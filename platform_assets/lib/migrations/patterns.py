"""Safe migration patterns as builders: each returns an ordinary ``Migration`` for the guarded job.

- ``add_column``: add nullable, backfill in batches, then NOT NULL (and an optional value check)
  through validated CHECK constraints.
- ``batched_update``: rewrite a column in throttled batches, with a backup to restore it from.
- ``change_column_type``: add a column of the new type, keep it in sync with a trigger, backfill
  it, then swap the two in one statement; the old column stays as ``<column>__old`` until a later
  ``drop_column`` contracts it.
- ``rename_column`` (expand) and ``drop_column`` (contract): add the new name, sync and backfill
  it; once the application reads the new name, drop the old one (backed up first).
- ``set_not_null``: NOT NULL through a validated CHECK, refused while a null remains.
- ``drop_primary_key``: a key no longer declared; its rollback builds it again.
- ``change_primary_key``: another key, or a key for a keyless table: its unique index built
  concurrently, then swapped in by one statement.

Names are quoted by psycopg; expressions (``value``, ``where``, ``using``) are SQL written by the
migration's author, as in any migration file, never taken from run config or metadata.
"""

from psycopg import sql

from platform_assets.lib.migrations.baseline import BACKUP_SCHEMA, backup_table_name
from platform_assets.lib.migrations.batches import batch_statement
from platform_assets.lib.migrations.model import (
    REPORTS_POSITION,
    BatchedUpdate,
    Check,
    Key,
    Migration,
    key_columns,
)
from platform_assets.lib.tables.schema import RETIRED_SUFFIX


def _text(statement: sql.Composable) -> str:
    return statement.as_string()


def _batch_statement(
    schema: str, table: str, key: Key, assignments: sql.Composable, pending: sql.Composable
) -> str:
    return batch_statement(schema, table, key_columns(key), assignments, pending)


def _remaining(schema: str, table: str, pending: sql.Composable) -> str:
    return _text(
        sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(
            sql.Identifier(schema, table), pending
        )
    )


# Above the DROP of the temporary CHECK: why the drop is safe, and the squawk rule it answers.
REDUNDANT_NOT_NULL_CHECK = (
    "-- the column is NOT NULL now: the CHECK (col IS NOT NULL) that made it fast is redundant\n"
    "-- squawk-ignore ban-drop-constraint\n"
)


def _not_null_steps(schema: str, table: str, column: str) -> list[str]:
    """NOT NULL without a long exclusive scan: a validated CHECK lets SET NOT NULL skip it."""
    target, name = sql.Identifier(schema, table), sql.Identifier(f"{table}_{column}_not_null"[:63])
    col = sql.Identifier(column)
    return [
        _text(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID").format(
                target, name, col
            )
        ),
        _text(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(target, name)),
        _text(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(target, col)),
        REDUNDANT_NOT_NULL_CHECK
        + _text(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(target, name)),
    ]


def add_column(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    key: Key,
    column: str,
    pg_type: str,
    value: str,
    default: str | None = None,
    allowed: list[str] | None = None,
    not_null: bool = True,
    batch_size: int = 10_000,
) -> Migration:
    """Add ``column`` nullable, backfill it with the SQL expression ``value`` (over ``t``), then
    constrain it. ``default`` (a literal) applies to rows inserted from the forward step on."""
    target, col = sql.Identifier(schema, table), sql.Identifier(column)
    forward = [
        _text(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                target, col, sql.SQL(pg_type)
            )
        )
    ]
    if default is not None:
        forward.append(
            _text(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                    target, col, sql.Literal(default)
                )
            )
        )
    pending = sql.SQL("t.{} IS NULL").format(col)
    constraints: list[str] = []
    check_name = sql.Identifier(f"{table}_{column}_check"[:63])
    if allowed:
        constraints += [
            _text(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IN ({})) NOT VALID").format(
                    target, check_name, col, sql.SQL(", ").join(map(sql.Literal, allowed))
                )
            ),
            _text(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(target, check_name)),
        ]
    if not_null:
        constraints += _not_null_steps(schema, table, column)
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        forward=forward,
        backfill=BatchedUpdate(
            reports=REPORTS_POSITION,
            statement=_batch_statement(
                schema, table, key, sql.SQL("{} = {}").format(col, sql.SQL(value)), pending
            ),
            remaining=_remaining(schema, table, pending),
            batch_size=batch_size,
        ),
        constraints=constraints,
        validate=[
            Check(
                f"no {column} is null",
                _text(
                    sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(
                        target, pending
                    )
                ),
            )
        ]
        if not_null
        else [],
        down=[
            _text(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(target, check_name)
            ),
            _text(sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(target, col)),
        ],
    )


def _restore_from_backup(
    migration_id: str, schema: str, table: str, key: Key, column: str, by_row: bool = False
) -> str:
    """Put the backed-up column back, row by key; ``by_row``: by the values of ``key``'s columns
    (every other column of a keyless table), which must determine the column's value."""
    columns = [sql.Identifier(c) for c in key_columns(key)]
    if not columns:
        raise ValueError(
            f"{schema}.{table} has no key: a destroyed column could not be restored to its rows;"
            " back it up by hand"
        )
    backup = sql.Identifier(BACKUP_SCHEMA, backup_table_name(migration_id, table))
    b_key = sql.SQL(", ").join(sql.SQL("b.") + c for c in columns)
    t_key = sql.SQL(", ").join(sql.SQL("t.") + c for c in columns)
    col = sql.Identifier(column)
    source, match = backup, sql.SQL("({}) = ({})").format(b_key, t_key)
    if by_row:
        # As text, so that nulls match and the join can hash; one value per row of the others.
        source = sql.SQL("(SELECT DISTINCT ROW({})::text AS matched, {} FROM {} AS b)").format(
            b_key, col, backup
        )
        match = sql.SQL("b.matched = ROW({})::text").format(t_key)
    return _text(
        sql.SQL("UPDATE {} AS t SET {col} = b.{col} FROM {} AS b WHERE {}").format(
            sql.Identifier(schema, table), source, match, col=col
        )
    )


def batched_update(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    key: Key,
    column: str,
    value: str,
    where: str,
    batch_size: int = 10_000,
    pause_s: float = 0.05,
) -> Migration:
    """Set ``column = value`` on rows matching ``where`` (both SQL over ``t``), in throttled
    batches. ``where`` must stop matching a row once it is updated, or the batches never end.
    The column is backed up first, and ``down`` restores it from that backup."""
    pending = sql.SQL(where)
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        forward=[],
        backfill=BatchedUpdate(
            reports=REPORTS_POSITION,
            statement=_batch_statement(
                schema,
                table,
                key,
                sql.SQL("{} = {}").format(sql.Identifier(column), sql.SQL(value)),
                pending,
            ),
            remaining=_remaining(schema, table, pending),
            batch_size=batch_size,
            pause_s=pause_s,
        ),
        destroys_columns=[column],
        down=[_restore_from_backup(id, schema, table, key, column)],
    )


def _sync_trigger(
    schema: str, table: str, source: str, target_column: str, expression: str
) -> list[str]:
    """A trigger keeping ``target_column`` equal to ``expression`` of ``source`` on every write."""
    function = sql.Identifier(schema, f"{table}_{target_column}_sync"[:63])
    trigger = sql.Identifier(f"{table}_{target_column}_sync"[:63])
    body = (
        sql.SQL("BEGIN NEW.{} := {}; RETURN NEW; END")
        .format(
            sql.Identifier(target_column),
            sql.SQL(expression).format(source=sql.SQL("NEW.") + sql.Identifier(source)),
        )
        .as_string()
    )
    return [
        _text(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}"
            ).format(function, sql.Literal(body))
        ),
        _text(
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                trigger, sql.Identifier(schema, table)
            )
        ),
        _text(
            sql.SQL(
                "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(trigger, sql.Identifier(schema, table), function)
        ),
    ]


def _drop_sync_trigger(schema: str, table: str, target_column: str) -> list[str]:
    function = sql.Identifier(schema, f"{table}_{target_column}_sync"[:63])
    trigger = sql.Identifier(f"{table}_{target_column}_sync"[:63])
    return [
        _text(
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                trigger, sql.Identifier(schema, table)
            )
        ),
        "-- the migration's own sync function, created by its expand step; no client calls it\n"
        "-- squawk-ignore ban-drop-function\n"
        + _text(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(function)),
    ]


def _copy_migration(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    key: Key,
    source: str,
    target_column: str,
    pg_type: str,
    expression: str,
    batch_size: int,
) -> tuple[list[str], BatchedUpdate, list[str]]:
    """Forward steps, backfill and down for 'add ``target_column``, keep it synced, backfill it'."""
    target = sql.Identifier(schema, table)
    new = sql.Identifier(target_column)
    converted = sql.SQL(expression).format(source=sql.SQL("t.") + sql.Identifier(source))
    pending = sql.SQL("t.{} IS NULL AND t.{} IS NOT NULL").format(new, sql.Identifier(source))
    forward = [
        _text(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                target, new, sql.SQL(pg_type)
            )
        ),
        *_sync_trigger(schema, table, source, target_column, expression),
    ]
    backfill = BatchedUpdate(
        reports=REPORTS_POSITION,
        statement=_batch_statement(
            schema, table, key, sql.SQL("{} = {}").format(new, converted), pending
        ),
        remaining=_remaining(schema, table, pending),
        batch_size=batch_size,
    )
    down = [
        *_drop_sync_trigger(schema, table, target_column),
        _text(sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(target, new)),
    ]
    return forward, backfill, down


def change_column_type(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    key: Key,
    column: str,
    new_type: str,
    using: str = "{source}::{type}",
    batch_size: int = 10_000,
) -> Migration:
    """Add/migrate/swap: ``<column>__new`` of ``new_type`` filled with ``using`` (``{source}`` is
    the old value), kept in sync by a trigger; then one statement renames the old column to
    ``<column>__old`` and the new one to ``column``. ``drop_column`` later removes ``__old``."""
    staged, retired = f"{column}__new"[:63], f"{column}{RETIRED_SUFFIX}"[:63]
    expression = using.replace("{type}", new_type)
    forward, backfill, down = _copy_migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        source=column,
        target_column=staged,
        pg_type=new_type,
        expression=expression,
        batch_size=batch_size,
    )
    target = sql.Identifier(schema, table)

    def renames(*pairs: tuple[str, str]) -> sql.Composable:
        return sql.SQL("; ").join(
            sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                target, sql.Identifier(old), sql.Identifier(new)
            )
            for old, new in pairs
        )

    swap = renames((column, retired), (staged, column))
    swap_back = renames((column, staged), (retired, column))
    swapped = sql.SQL(
        "EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_schema = {} AND table_name = {} AND column_name = {})"
    ).format(sql.Literal(schema), sql.Literal(table), sql.Literal(retired))
    # One DO block each, so the swap (and its undo) is atomic and safe to repeat.
    do = "DO $migration$ BEGIN IF {cond} THEN {body}; END IF; END $migration$"
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        forward=forward,
        backfill=backfill,
        constraints=[
            *_drop_sync_trigger(schema, table, staged),
            _text(sql.SQL(do).format(cond=sql.SQL("NOT ") + swapped, body=swap)),
        ],
        validate=[
            Check(
                f"{column} has the new type",
                _text(
                    sql.SQL(
                        "SELECT format_type(atttypid, atttypmod) = {} FROM pg_attribute"
                        " WHERE attrelid = {}::regclass AND attname = {}"
                    ).format(
                        sql.Literal(new_type),
                        sql.Literal(sql.Identifier(schema, table).as_string()),
                        sql.Literal(column),
                    )
                ),
            )
        ],
        down=[_text(sql.SQL(do).format(cond=swapped, body=swap_back)), *down],
    )


def rename_column(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    key: Key,
    column: str,
    new_name: str,
    pg_type: str,
    batch_size: int = 10_000,
) -> Migration:
    """Expand: add ``new_name``, keep it equal to ``column`` with a trigger, backfill it. Contract
    with ``drop_column`` once the application reads and writes ``new_name``."""
    forward, backfill, down = _copy_migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        source=column,
        target_column=new_name,
        pg_type=pg_type,
        expression="{source}",
        batch_size=batch_size,
    )
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        forward=forward,
        backfill=backfill,
        down=down,
        validate=[
            Check(
                f"{new_name} equals {column} everywhere",
                _text(
                    sql.SQL(
                        "SELECT NOT EXISTS (SELECT 1 FROM {} WHERE {} IS DISTINCT FROM {})"
                    ).format(
                        sql.Identifier(schema, table),
                        sql.Identifier(new_name),
                        sql.Identifier(column),
                    )
                ),
            )
        ],
    )


def drop_column(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    key: Key,
    column: str,
    pg_type: str,
    sync_trigger_of: str | None = None,
    by_row: bool = False,
) -> Migration:
    """Contract: drop ``column`` (backed up first; ``down`` restores it), and the sync trigger
    that fed ``sync_trigger_of`` from it, if any. ``by_row``: a keyless table's drop, ``key``
    every other column, restored to the rows agreeing on them (the caller's pre-check must prove
    they determine the column)."""
    target, col = sql.Identifier(schema, table), sql.Identifier(column)
    triggers = _drop_sync_trigger(schema, table, sync_trigger_of) if sync_trigger_of else []
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        forward=[
            *triggers,
            _text(sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(target, col)),
        ],
        destroys_columns=[column],
        down=[
            _text(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    target, col, sql.SQL(pg_type)
                )
            ),
            _restore_from_backup(id, schema, table, key, column, by_row),
        ],
    )


def keyed_by(schema: str, table: str, key: tuple[str, ...], description: str) -> Check:
    """The table's primary key is exactly ``key``'s columns, in order (none: no primary key)."""
    query = sql.SQL(
        "SELECT coalesce(array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[],"
        " a.attnum)), '{{}}') = {} FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = {}::regclass AND i.indisprimary"
    ).format(sql.Literal(list(key)), sql.Literal(sql.Identifier(schema, table).as_string()))
    return Check(description, _text(query))


def _constraint_exists(schema: str, table: str, condition: sql.Composable) -> sql.Composable:
    return sql.SQL(
        "EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = {}::regclass AND {})"
    ).format(sql.Literal(sql.Identifier(schema, table).as_string()), condition)


def set_not_null(
    *, id: str, description: str, schema: str, table: str, key: Key, column: str
) -> Migration:
    """NOT NULL on ``column`` without a long exclusive scan (a validated CHECK first), refused by
    its pre-check while any row holds a null there."""
    target, col = sql.Identifier(schema, table), sql.Identifier(column)
    not_null = sql.SQL(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {}"
    ).format(sql.Literal(target.as_string()), sql.Literal(column))
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        pre_checks=[
            Check(
                f"no {column} is null",
                _text(
                    sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {} WHERE {} IS NULL)").format(
                        target, col
                    )
                ),
            )
        ],
        forward=[],
        constraints=_not_null_steps(schema, table, column),
        validate=[Check(f"{column} is NOT NULL", _text(not_null))],
        down=[
            _text(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    target, sql.Identifier(f"{table}_{column}_not_null"[:63])
                )
            ),
            _text(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(target, col)),
        ],
    )


# Above the DROP of a primary key the spec no longer declares: why, and the squawk rule it answers.
UNDECLARED_KEY = (
    "-- the dataset's spec no longer declares this key (keyless, or a dedupe key instead)\n"
    "-- squawk-ignore ban-drop-constraint\n"
)


def drop_primary_key(
    *, id: str, description: str, schema: str, table: str, key: tuple[str, ...], constraint: str
) -> Migration:
    """Drop the primary key ``constraint`` over ``key``; ``down`` builds it again."""
    target = sql.Identifier(schema, table)
    has_key = _constraint_exists(schema, table, sql.SQL("contype = 'p'"))
    add_back = sql.SQL(
        "DO $migration$ BEGIN IF NOT {} THEN ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({});"
        " END IF; END $migration$"
    ).format(
        has_key,
        target,
        sql.Identifier(constraint),
        sql.SQL(", ").join(map(sql.Identifier, key)),
    )
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=key,
        forward=[
            UNDECLARED_KEY
            + _text(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    target, sql.Identifier(constraint)
                )
            )
        ],
        validate=[
            Check(f"{schema}.{table} has no primary key", _text(sql.SQL("SELECT NOT ") + has_key))
        ],
        down=[_text(add_back)],
    )


# Above the swap of one primary key for another: why dropping the old one is safe.
REPLACED_KEY = (
    "-- the new key's unique index is built and every key column NOT NULL: one statement swaps\n"
    "-- squawk-ignore ban-drop-constraint\n"
)


def change_primary_key(
    *,
    id: str,
    description: str,
    schema: str,
    table: str,
    old_key: tuple[str, ...],
    old_constraint: str | None,
    new_key: tuple[str, ...],
    nullable: list[str],
) -> Migration:
    """Key the table by ``new_key`` (instead of ``old_key``, or of none): its unique index built
    ``CONCURRENTLY``, its ``nullable`` columns made NOT NULL through validated checks, then one
    statement drops the old key and adds the new one on that index. Pre-checks (the caller's)
    should prove the new key unique and present in every row."""
    target = sql.Identifier(schema, table)
    name = f"{table}_{'_'.join(new_key)}_pkey"[:63]
    index, regclass = sql.Identifier(name), sql.Literal(target.as_string())
    columns = sql.SQL(", ").join(map(sql.Identifier, new_key))
    invalid_leftover = sql.SQL(
        "DO $migration$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c"
        " ON c.oid = i.indexrelid WHERE i.indrelid = {}::regclass AND c.relname = {}"
        " AND NOT i.indisvalid) THEN DROP INDEX {}; END IF; END $migration$"
    ).format(regclass, sql.Literal(name), sql.Identifier(schema, name))
    drop_old = (
        sql.SQL("DROP CONSTRAINT {}, ").format(sql.Identifier(old_constraint))
        if old_constraint
        else sql.SQL("")
    )
    swap = sql.SQL("ALTER TABLE {} {}ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
        target, drop_old, index, index
    )
    old_back = (
        sql.SQL("; ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
            target,
            sql.Identifier(old_constraint),
            sql.SQL(", ").join(map(sql.Identifier, old_key)),
        )
        if old_constraint
        else sql.SQL("")
    )
    swap_back = sql.SQL(
        "DO $migration$ BEGIN IF {} THEN ALTER TABLE {} DROP CONSTRAINT {}{}; END IF;"
        " END $migration$"
    ).format(
        _constraint_exists(schema, table, sql.SQL("conname = {}").format(sql.Literal(name))),
        target,
        index,
        old_back,
    )
    return Migration(
        id=id,
        description=description,
        schema=schema,
        table=table,
        key=old_key,
        forward=[
            _text(invalid_leftover),
            _text(
                sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({})").format(
                    index, target, columns
                )
            ),
        ],
        constraints=[
            *(step for column in nullable for step in _not_null_steps(schema, table, column)),
            REPLACED_KEY + _text(swap),
        ],
        validate=[
            keyed_by(schema, table, new_key, f"{schema}.{table} is keyed by {list(new_key)}")
        ],
        down=[
            _text(swap_back),
            _text(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, name))),
            *(
                _text(
                    sql.SQL(
                        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}, ALTER COLUMN {} DROP NOT NULL"
                    ).format(
                        target,
                        sql.Identifier(f"{table}_{column}_not_null"[:63]),
                        sql.Identifier(column),
                    )
                )
                for column in nullable
            ),
        ],
    )
