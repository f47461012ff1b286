"""Fault injection: dead-letter exports SIGKILLed at seeded random moments.

A queue of ``LETTERS`` dead letters is exported once; more letters arrive; the export to the same
place is then killed at a random moment of the second half of its work (where an export that
buffered every letter first would be writing its file), again and again. After every kill the file
under the final name is a complete Parquet file, either the previous export or the new one (never
a file a consumer cannot open), and the next export removes the killed one's temporary file.

``PLATFORM_FAULT_SEED`` replays a run's moments.
"""

import signal
import textwrap
from pathlib import Path

import pyarrow.parquet as pq

from platform_assets.lib.dead_letters.export import export_dead_letters
from platform_assets.lib.samples.sample_dead_letters import add_sample_letters
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.faults.killing import KillMoments
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


def test_killed_exports_leave_the_previous_file_or_the_new_one(
    clean_warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "exports" / "letters.parquet"
    url = clean_warehouse.database_url or ""
    add_sample_letters(clean_warehouse, "export/test", LETTERS)
    assert export_dead_letters(clean_warehouse, path) == LETTERS
    add_sample_letters(clean_warehouse, "export/test", 1_000)
    moments = KillMoments(EXPORTER, str(path), url, seed=f"{SEED}:export")  # the new export
    assert pq.ParquetFile(path).metadata.num_rows == LETTERS + 1_000

    tally = {"killed": 0, "finished first": 0}
    while tally["killed"] < KILLS:
        assert sum(tally.values()) < 3 * KILLS, f"the exports kept finishing first: {tally}"
        add_sample_letters(clean_warehouse, "export/test", 1_000)
        before = pq.ParquetFile(path).metadata.num_rows
        code = moments.kill(within=(0.4, 1.0))
        assert code in (0, -signal.SIGKILL)
        tally["killed" if code else "finished first"] += 1
        assert pq.ParquetFile(path).metadata.num_rows in (before, before + 1_000)
        # The next export finishes the work and leaves no temporary file behind.
        assert export_dead_letters(clean_warehouse, path) == before + 1_000
        assert pq.read_table(path, columns=["id"]).num_rows == before + 1_000
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    print(f"export kill trials (seed {SEED}, export {moments.run_s:.1f} s): {tally}")
