"""The resources every domain uses, chosen from the environment in this one place."""

import dagster as dg

from platform_assets.lib import settings
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.notifications.notifier import LogNotifier, Notifier, WebhookNotifier
from platform_assets.lib.server import roles
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse


def build_warehouse(url_variable: str, embedded_role: str) -> Warehouse:
    """The warehouse at the URL in ``url_variable`` when set (a secret: read from the
    environment when used), else the embedded server as ``embedded_role``."""
    if settings.configured_url(url_variable):
        return Warehouse(database_url=dg.EnvVar(url_variable))
    return Warehouse(embedded_role=embedded_role)


def build_notifier() -> Notifier:
    """Alerts posted to ``PLATFORM_ALERT_WEBHOOK_URL`` when set (a secret: read from the
    environment when used, never stored in the definitions), else written to the log."""
    if settings.configured_url(settings.ALERT_WEBHOOK_URL_VAR):
        return WebhookNotifier(url=dg.EnvVar(settings.ALERT_WEBHOOK_URL_VAR))
    return LogNotifier()


# Runs connect as the owner of the platform's tables; the migrate job as the migrator.
warehouse = build_warehouse(settings.WAREHOUSE_URL_VAR, roles.OWNER)
migrator = build_warehouse(settings.MIGRATOR_URL_VAR, roles.MIGRATOR)

# What the dead-letter jobs (replay, discard, export) use: the warehouse, and an IO manager for
# their outputs, which no later op reads. Bound to the jobs themselves, so their launchpads list
# these alone, not every resource of the code location (Dagster binds the Definitions' resources
# only to jobs that lack some).
DEAD_LETTER_JOB_RESOURCES = {"warehouse": warehouse, "io_manager": dg.mem_io_manager}

defs = dg.Definitions(
    resources={
        "warehouse": warehouse,
        "io_manager": PostgresIOManager(warehouse=warehouse),
        "landing": LandingZone(directory=settings.landing_root()),
        "migration_lock": MigrationLock(warehouse=migrator),
        "notifier": build_notifier(),
    }
)
