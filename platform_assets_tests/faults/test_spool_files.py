"""A write's dead-letter spool lives in its run's directory and leaves nothing behind: removed when
the write ends, and, when its process was killed, by the next spool started on the machine."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa

from platform_assets.lib import settings
from platform_assets.lib.dead_letters.spool import DeadLetterSpool, spool_root
from platform_assets.lib.ingestion.result import DEAD_LETTER_SCHEMA
from platform_assets_tests.conftest import REPO_ROOT

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal
    from platform_assets.lib.dead_letters.spool import DeadLetterSpool
    from platform_assets_tests.faults.test_spool_files import letters

    DeadLetterSpool("killed-run").add(letters(3))
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def letters(count: int) -> pa.Table:
    """``count`` dead letters, their text fields filled."""
    return pa.table(
        {
            f.name: pa.array(["x"] * count, f.type)
            if pa.types.is_string(f.type)
            else pa.nulls(count, f.type)
            for f in DEAD_LETTER_SCHEMA
        },
        schema=DEAD_LETTER_SCHEMA,
    )


def test_a_spool_is_in_its_run_directory_and_a_killed_ones_file_is_removed_next_time(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(settings.DATA_DIR_VAR, str(tmp_path))
    env = {**os.environ, settings.DATA_DIR_VAR: str(tmp_path)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER], env=env, cwd=REPO_ROOT, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    (left,) = (spool_root() / "killed-run").iterdir()  # the killed process could not clean up
    assert left.suffix == ".arrows"

    # Another machine's spool on a shared volume: its process cannot be seen from here.
    elsewhere = spool_root() / "other-run" / "dead-letters-another-host-1-x.arrows"
    elsewhere.parent.mkdir()
    elsewhere.touch()

    spool = DeadLetterSpool("this-run")
    spool.add(letters(5))
    assert not (spool_root() / "killed-run").exists()  # removed as this spool started
    assert elsewhere.exists()
    elsewhere.unlink()
    elsewhere.parent.rmdir()
    (mine,) = (spool_root() / "this-run").iterdir()
    assert f"-{os.getpid()}-" in mine.name
    assert sum(batch.num_rows for batch in spool.batches()) == 5
    spool.close()
    assert list(spool_root().iterdir()) == []  # the write ended: its file and directory went
