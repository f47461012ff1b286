"""Fault injection: dead-letter exports SIGKILLed at seeded random moments.

A queue of ``LETTERS`` dead letters is exported once; more letters arrive; the export to the same
place is then killed at a random moment of the second half of its work (where an export that
buffered every letter first would be writing its file), again and again. After every kill the file
under the final name is a complete Parquet file, either the previous export or the new one (never
a file a consumer cannot open), and the next export removes the killed one's temporary file.

``PLATFORM_FAULT_SEED`` replays a run's moments.
"""

import random
import signal
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
from psycopg import sql

from platform_assets.lib.dead_letters.export import export_dead_letters
from platform_assets.lib.dead_letters.side_writes import DEAD_LETTER_DDL, DEAD_LETTERS
from platform_assets.lib.tables.platform_tables import create_platform_table
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets.lib.warehouse.transactions import transaction
from platform_assets_tests.faults.killing import killed, timed
from platform_assets_tests.faults.test_killed_loads import SEED

KILLS = 3
LETTERS = 150_000
EXPORTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from platform_assets.lib.dead_letters.export import export_dead_letters
    from platform_assets.lib.warehouse.resource import Warehouse

    print("started", flush=True)
    export_dead_letters(Warehouse(database_url=sys.argv[2] or None), Path(sys.argv[1]))
    """
)


def add_letters(warehouse: Warehouse, count: int) -> None:
    """``count`` more dead letters of a made-up asset, each with a payload of a dozen fields."""
    with warehouse.bulk_connection() as conn, transaction(conn) as cursor:
        create_platform_table(cursor, DEAD_LETTERS, DEAD_LETTER_DDL)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (asset_key, partition_key, run_id, stage, source_ref, payload,"
                " error_class, error_message, record_hash)"
                " SELECT 'export/test', '2026-11-01', 'run', 'validate', 'file.csv:' || n,"
                " jsonb_object(array_agg('field_' || f), array_agg(md5((n * f)::text))),"
                " 'ValidationError', 'quantity is below 1', md5(n::text)"
                " FROM generate_series(1, $1) n, generate_series(1, 12) f GROUP BY n"
            )
            .format(sql.Identifier("platform", DEAD_LETTERS))
            .as_string(),
            parameters=(count,),
        )


def test_killed_exports_leave_the_previous_file_or_the_new_one(
    clean_warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "exports" / "letters.parquet"
    url = clean_warehouse.database_url or ""
    add_letters(clean_warehouse, LETTERS)
    assert export_dead_letters(clean_warehouse, path) == LETTERS
    add_letters(clean_warehouse, 1_000)
    export_s = timed(EXPORTER, str(path), url)  # the new export, unkilled
    assert pq.ParquetFile(path).metadata.num_rows == LETTERS + 1_000

    rng = random.Random(f"{SEED}:export")
    tally = {"killed": 0, "finished first": 0}
    while tally["killed"] < KILLS:
        assert sum(tally.values()) < 3 * KILLS, f"the exports kept finishing first: {tally}"
        add_letters(clean_warehouse, 1_000)
        before = pq.ParquetFile(path).metadata.num_rows
        code = killed(EXPORTER, str(path), url, after_s=rng.uniform(0.4, 1.0) * export_s)
        assert code in (0, -signal.SIGKILL)
        tally["killed" if code else "finished first"] += 1
        assert pq.ParquetFile(path).metadata.num_rows in (before, before + 1_000)
        # The next export finishes the work and leaves no temporary file behind.
        assert export_dead_letters(clean_warehouse, path) == before + 1_000
        assert pq.read_table(path, columns=["id"]).num_rows == before + 1_000
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    print(f"export kill trials (seed {SEED}, export {export_s:.1f} s): {tally}")
