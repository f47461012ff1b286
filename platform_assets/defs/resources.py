"""The resources every domain uses, chosen from the environment in this one place."""

import dagster as dg

from platform_assets.lib import settings
from platform_assets.lib.io_manager.io_manager import PostgresIOManager
from platform_assets.lib.migrations.lock import MigrationLock
from platform_assets.lib.notifications.notifier import LogNotifier, Notifier, WebhookNotifier
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse


def build_warehouse() -> Warehouse:
    """The warehouse at ``PLATFORM_DATABASE_URL`` when set, else the embedded server."""
    if settings.configured_url(settings.WAREHOUSE_URL_VAR):
        return Warehouse(database_url=dg.EnvVar(settings.WAREHOUSE_URL_VAR))
    return Warehouse()


def build_notifier() -> Notifier:
    """Alerts posted to ``PLATFORM_ALERT_WEBHOOK_URL`` when set (a secret: read from the
    environment when used, never stored in the definitions), else written to the log."""
    if settings.configured_url(settings.ALERT_WEBHOOK_URL_VAR):
        return WebhookNotifier(url=dg.EnvVar(settings.ALERT_WEBHOOK_URL_VAR))
    return LogNotifier()


warehouse = build_warehouse()

defs = dg.Definitions(
    resources={
        "warehouse": warehouse,
        "io_manager": PostgresIOManager(warehouse=warehouse),
        "landing": LandingZone(directory=str(settings.landing_dir())),
        "migration_lock": MigrationLock(warehouse=warehouse),
        "notifier": build_notifier(),
    }
)
