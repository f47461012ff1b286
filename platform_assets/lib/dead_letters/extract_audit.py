"""Does an incremental extract account for its source? Counted in the source table itself.

Independently of the extract's reader and accounting: every source row up to the committed
high-water mark must be stored at the version the source holds (same ``updated_at``) or wait as
an unresolved dead letter. A mark ahead of the stored rows, a lost chunk or a row stored at
another version shows as missing or other-version keys. A row with no ``updated_at`` or no key
has no place in the mark's order, so no extract will ever take it: it shows as unmarked. A stored
row whose key the source no longer holds was deleted there, which an extract by ``updated_at``
cannot see: it is reported, not counted against the extract.
"""

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from platform_assets.lib.dead_letters.side_writes import DEAD_LETTERS, UNRESOLVED
from platform_assets.lib.dead_letters.superseded import INTEGER_TEXT
from platform_assets.lib.sources.postgres_table import PostgresTableSource
from platform_assets.lib.tables.platform_tables import PLATFORM_SCHEMA
from platform_assets.lib.tables.statements import Params
from platform_assets.lib.warehouse.resource import Warehouse


@dataclass(frozen=True)
class ExtractAudit:
    """The source's rows up to the committed mark, against the target table and the dead-letter
    queue: each must be stored at the version the source holds (same ``updated_at``) or wait as
    an unresolved dead letter."""

    source_rows: int
    stored: int
    dead_lettered: int
    missing: list[int]
    other_version: list[int]
    unmarked: int
    unmarked_keys: list[int]
    deleted_in_source: int
    deleted_in_source_keys: list[int]

    @property
    def adds_up(self) -> bool:
        """Every source row up to the mark is stored as it is, or dead-lettered, and no row is
        out of every extract's reach."""
        return not self.missing and not self.other_version and not self.unmarked


SAMPLE_KEYS = 20  # keys named in a failing audit


def audit_extract(
    source: PostgresTableSource,
    source_database: Warehouse,
    mark: dict,
    warehouse: Warehouse,
    target: tuple[str, str],
    asset_key: str,
) -> ExtractAudit:
    """Counts, independently of the reader, what the source holds up to ``mark`` and where each
    row went: a mark ahead of the stored rows, a lost chunk or a row stored at another version
    shows as missing or other-version keys, a row without ``updated_at`` or key as unmarked, and
    a stored row the source no longer holds as deleted in the source."""
    at, key = sql.Identifier(source.updated_at_column), sql.Identifier(source.key_column)
    every_row = sql.SQL(
        "SELECT {key}::bigint AS key, {at} AS at, ({at}, {key}) <= ($1, $2::bigint) AS upto"
        " FROM {table}"
    ).format(key=key, at=at, table=sql.Identifier(*source.schema_and_table))
    parameters = (datetime.fromisoformat(mark["updated_at"]), int(mark["key"]))
    with source_database.bulk_connection() as conn, conn.cursor() as cursor:
        cursor.execute(every_row.as_string(), parameters=parameters)
        every_source_row = cursor.fetch_arrow_table()
    # One scan of the source: a row without updated_at or key has no place in the mark's order.
    marked = pc.and_(pc.is_valid(every_source_row["key"]), pc.is_valid(every_source_row["at"]))
    in_source = every_source_row.filter(
        pc.and_(marked, pc.fill_null(every_source_row["upto"], False))
    )
    unmarked = every_source_row.filter(pc.invert(marked))["key"]
    stored_query = sql.SQL("SELECT {key}::bigint AS key, {at} AS stored_at FROM {table}").format(
        key=key, at=at, table=sql.Identifier(*target)
    )
    params = Params()
    name = params.add(source.key_column)
    letters_query = sql.SQL(
        "SELECT DISTINCT (payload->>{name})::bigint AS key FROM {dlq} WHERE asset_key = {asset}"
        " AND status IN ({unresolved}) AND payload->>{name} ~ {integer}"
    ).format(
        name=name,
        dlq=sql.Identifier(PLATFORM_SCHEMA, DEAD_LETTERS),
        asset=params.add(asset_key),
        unresolved=params.add_all(UNRESOLVED),
        integer=params.add(INTEGER_TEXT),
    )
    with warehouse.bulk_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass($1)", parameters=[".".join(target)])
        exists = cursor.fetchone()[0] is not None
        if exists:
            cursor.execute(stored_query.as_string())
            stored = cursor.fetch_arrow_table()
        else:
            stored = pa.table({"key": pa.array([], pa.int64()), "stored_at": in_source["at"][:0]})
        cursor.execute("SELECT to_regclass($1)", parameters=[f"{PLATFORM_SCHEMA}.{DEAD_LETTERS}"])
        if cursor.fetchone()[0] is not None:
            cursor.execute(letters_query.as_string(), parameters=params.values)
            lettered = set(cursor.fetch_arrow_table()["key"].to_pylist())
        else:
            lettered = set()
    deleted = stored["key"].filter(pc.invert(pc.is_in(stored["key"], every_source_row["key"])))
    joined = in_source.join(stored, "key", join_type="left outer").to_pylist()
    missing, other, held, dead = [], [], 0, 0
    for row in joined:
        if row["key"] in lettered:
            dead += 1
        elif row["stored_at"] is None:
            missing.append(row["key"])
        elif row["stored_at"] != row["at"]:
            other.append(row["key"])
        else:
            held += 1
    return ExtractAudit(
        in_source.num_rows,
        held,
        dead,
        sorted(missing)[:SAMPLE_KEYS],
        sorted(other)[:SAMPLE_KEYS],
        len(unmarked),
        sorted(unmarked.drop_null().to_pylist())[:SAMPLE_KEYS],
        len(deleted),
        sorted(deleted.to_pylist())[:SAMPLE_KEYS],
    )
