"""The environment variables the platform reads, in one place.

Everything that depends on where the platform runs (database URLs, data directories, log format) is
resolved here, so that the rest of the code never reads ``os.environ`` itself.
"""

import os
from pathlib import Path

WAREHOUSE_URL_VAR = "PLATFORM_DATABASE_URL"
MIGRATOR_URL_VAR = "PLATFORM_MIGRATOR_DATABASE_URL"
ADMIN_URL_VAR = "PLATFORM_ADMIN_DATABASE_URL"  # only `platform-db apply-roles` reads it
EXECUTOR_VAR = "PLATFORM_EXECUTOR"
DAGSTER_STORAGE_URL_VAR = "PLATFORM_DAGSTER_STORAGE_URL"
DATA_DIR_VAR = "PLATFORM_DATA_DIR"
LANDING_DIR_VAR = "PLATFORM_LANDING_DIR"
LANDING_URL_VAR = "PLATFORM_LANDING_URL"
LOG_FORMAT_VAR = "PLATFORM_LOG_FORMAT"
ALERT_WEBHOOK_URL_VAR = "PLATFORM_ALERT_WEBHOOK_URL"

WAREHOUSE_DATABASE = "warehouse"
DAGSTER_DATABASE = "dagster"


def data_dir() -> Path:
    """Project-local directory for the embedded server and sample data (default ``./.platform``)."""
    return Path(os.environ.get(DATA_DIR_VAR, ".platform")).expanduser().resolve()


def landing_dir() -> Path:
    """Directory holding the daily landing files (``<data dir>/landing`` by default)."""
    configured = os.environ.get(LANDING_DIR_VAR)
    return Path(configured).expanduser().resolve() if configured else data_dir() / "landing"


def landing_root() -> str:
    """Where the landing files are: an object store's ``s3://bucket/prefix`` when
    ``PLATFORM_LANDING_URL`` names one, else the local ``landing_dir()``."""
    url = os.environ.get(LANDING_URL_VAR, "").strip()
    if url and not url.startswith("s3://"):
        raise ValueError(f"{LANDING_URL_VAR} must be an s3://bucket/prefix URL, not {url!r}")
    return url or str(landing_dir())


def configured_url(variable: str) -> str | None:
    """The database URL set in ``variable``, or None when it is unset or blank."""
    value = os.environ.get(variable, "").strip()
    return value or None


def executor() -> str:
    """How a run executes its steps: ``in_process`` (one process, the default), or ``k8s_job``
    (a Kubernetes pod per step, on a cluster)."""
    return os.environ.get(EXECUTOR_VAR, "in_process").strip().lower()


def log_format() -> str:
    """``json`` for machine-read logs (production), ``console`` for people (the default)."""
    return os.environ.get(LOG_FORMAT_VAR, "console").strip().lower()
