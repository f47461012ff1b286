"""What the benchmarks share: a warehouse to measure against, and clean-up afterwards."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platform_assets.lib import settings
from platform_assets.lib.server.embedded import stop_embedded_server
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
