"""The landing-zone resource: where the daily source files are dropped."""

from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from platform_assets.lib.samples.sample_orders import orders_file_name


class LandingZone(dg.ConfigurableResource):
    """The directory that receives the daily landing files (``PLATFORM_LANDING_DIR``)."""

    directory: str = Field(
        description="Root of the landing zone; orders land in <directory>/orders."
    )

    def orders_file(self, day: date) -> Path:
        """The order file for ``day``."""
        return Path(self.directory) / "orders" / orders_file_name(day)
