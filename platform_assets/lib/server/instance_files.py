"""Where the Dagster instance keeps files (captured step logs, local artifacts): the data directory.

Referenced from ``dagster.yaml`` like the storage, so that they follow ``PLATFORM_DATA_DIR``
wherever ``dagster dev`` runs, and a benchmark or test with its own data directory leaves nothing
in the project's ``./.platform``.
"""

from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._serdes import ConfigurableClassData

from platform_assets.lib import settings
from platform_assets.lib.server.instance_storage import ConfiguredByEnvironment


class PlatformComputeLogManager(ConfiguredByEnvironment, LocalComputeLogManager):
    """Captured stdout/stderr of every step, under ``<data dir>/compute_logs``."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(str(settings.data_dir() / "compute_logs"), inst_data=inst_data)


class PlatformArtifactStorage(ConfiguredByEnvironment, LocalArtifactStorage):
    """Dagster's local artifacts (file manager outputs), under ``<data dir>/artifacts``."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(str(settings.data_dir() / "artifacts"), inst_data=inst_data)
