"""The landing-zone resource: where the daily source files are dropped."""

import dagster as dg
from pydantic import Field


class LandingZone(dg.ConfigurableResource):
    """The directory that receives the daily landing files (`PLATFORM_LANDING_DIR`)."""

    directory: str = Field(
        description="Root of the landing zone; orders land in <directory>/orders."
    )
