"""What the benchmarks share: a warehouse to measure against, and clean-up afterwards."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg

from platform_assets.lib import settings
from platform_assets.lib.server.embedded import embedded_admin_url, stop_embedded_server
from platform_assets.lib.warehouse.resource import Warehouse


@contextmanager
def benchmark_warehouse(prefix: str) -> Iterator[Warehouse]:
    """``PLATFORM_DATABASE_URL`` when set, else an embedded server in a temporary directory that is
    stopped and deleted afterwards."""
    data_dir = None
    if not settings.configured_url(settings.WAREHOUSE_URL_VAR):
        data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        os.environ[settings.DATA_DIR_VAR] = str(data_dir)
    warehouse = Warehouse(database_url=settings.configured_url(settings.WAREHOUSE_URL_VAR))
    try:
        yield warehouse
    finally:
        warehouse.close()
        if data_dir is not None:
            stop_embedded_server(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)  # gigabytes per run otherwise


def range_tags(first: date | str, last: date | str) -> dict[str, str]:
    """The tags that make one run cover the partitions ``first``..``last`` (days or keys)."""
    return {
        "dagster/asset_partition_range_start": str(first),
        "dagster/asset_partition_range_end": str(last),
    }


def checkpoint_server(warehouse: Warehouse) -> None:
    """Flush the server's dirty buffers (``CHECKPOINT``) so no arm pays for the previous one's
    writes. It needs the server's administrator: the embedded server's superuser, or the
    configured URL's role (the platform's own roles may not; a refusal stops the benchmark)."""
    url = warehouse.database_url or embedded_admin_url(settings.WAREHOUSE_DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries the parent's peak
    over fork and exec into it, and the parent held the generated file's columns."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_arm(script: str, arm: str, target: Path) -> dict:
    """Run ``script --arm arm --target target`` in a child process: the figures it prints as
    JSON on its last line (its own peak RSS among them)."""
    completed = subprocess.run(
        [sys.executable, script, "--arm", arm, "--target", str(target)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{arm} arm failed ({completed.returncode}): {completed.stdout[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
