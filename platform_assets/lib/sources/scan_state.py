"""What a landing sensor has seen, kept in the warehouse; its cursor only points at it.

A sensor's cursor is shown at the top of its page and stored with every tick: holding every
file's size, times and SHA-256 it grew with the landing zone (59 KB for 340 files). The scan's
state is a row of ``platform.landing_scan_state`` instead, one generation per change, and the
cursor names the generation (``{"generation": 12, ...}``, some 60 bytes).

A tick writes generation N+1 before Dagster commits the cursor naming it, so a tick that fails in
between leaves the cursor at N: the next tick starts again from N (which is kept until a later
generation has been written) and overwrites the unreferenced N+1. Only generations older than the
one a tick started from are removed. A tick that changes nothing writes nothing. A cursor from
before (the state itself) is read as it is and moved into the table on its next change.
"""

import json

import adbc_driver_postgresql.dbapi as adbc
import structlog
from psycopg import sql

from platform_assets.lib.tables.platform_tables import PLATFORM_SCHEMA, create_platform_table
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transactions import transaction

SCAN_STATE = "landing_scan_state"
SCAN_STATE_DDL = [
    "CREATE SCHEMA IF NOT EXISTS platform",
    """
    CREATE TABLE IF NOT EXISTS platform.landing_scan_state (
        sensor text NOT NULL,
        generation bigint NOT NULL,
        state jsonb NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (sensor, generation)
    )
    """,
]
GENERATION = "generation"
_TABLE = sql.Identifier(PLATFORM_SCHEMA, SCAN_STATE)


def stored_state(
    warehouse: Warehouse, sensor: str, cursor: dict | None, log: structlog.stdlib.BoundLogger
) -> dict | None:
    """The scan state ``cursor`` points at (None: nothing seen yet, or its row is gone, as after
    a reset of the warehouse: then everything is seen anew, and the run keys of the loads it
    requests keep a file's same content from loading twice)."""
    if not cursor:
        return None
    if GENERATION not in cursor:
        return cursor  # a cursor that is the state itself, from before
    query = sql.SQL("SELECT state FROM {} WHERE sensor = $1 AND generation = $2").format(_TABLE)

    def read(conn: adbc.Connection) -> dict | None:
        with transaction(conn) as cursor_:
            create_platform_table(cursor_, SCAN_STATE, SCAN_STATE_DDL)
            cursor_.execute(query.as_string(), parameters=(sensor, cursor[GENERATION]))
            row = cursor_.fetchone()
        return None if row is None else json.loads(row[0])

    return warehouse.retried(read, log)


def store_state(
    warehouse: Warehouse,
    sensor: str,
    cursor: dict | None,
    state: dict,
    log: structlog.stdlib.BoundLogger,
) -> int:
    """Store ``state`` as the generation after ``cursor``'s, drop the generations before
    ``cursor``'s, and return the new generation, for the next cursor to name."""
    started_from = (cursor or {}).get(GENERATION, 0)
    generation = started_from + 1
    upsert = sql.SQL(
        "INSERT INTO {} (sensor, generation, state) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (sensor, generation) DO UPDATE SET state = excluded.state,"
        " written_at = now()"
    ).format(_TABLE)
    prune = sql.SQL("DELETE FROM {} WHERE sensor = $1 AND generation < $2").format(_TABLE)

    def write(conn: adbc.Connection) -> None:
        with transaction(conn) as cursor_:
            create_platform_table(cursor_, SCAN_STATE, SCAN_STATE_DDL)
            cursor_.execute(upsert.as_string(), parameters=(sensor, generation, json.dumps(state)))
            cursor_.execute(prune.as_string(), parameters=(sensor, started_from))

    warehouse.retried(write, log)
    return generation
