"""The landing-zone resource: where the daily source files are dropped."""

import dagster as dg
from pydantic import Field

from platform_assets.lib.sources.object_landing import ObjectLanding, is_object_store


class LandingZone(dg.ConfigurableResource):
    """Where the daily landing files arrive: a local directory (PLATFORM_LANDING_DIR), or an
    S3-compatible bucket and prefix (PLATFORM_LANDING_URL, s3://bucket/prefix)."""

    directory: str = Field(
        description=(
            "Root of the landing zone, a directory or an s3://bucket/prefix URL; orders land in"
            " <directory>/orders."
        )
    )

    def object_store(self) -> ObjectLanding | None:
        """The object store the zone is in, or None for a local directory."""
        return ObjectLanding(self.directory) if is_object_store(self.directory) else None
