"""What every part of a dataset spec shares: strict models, and time zones checked on load."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A part of a spec: unknown keys are refused (a misspelt key is an error, not ignored), and
    the loaded spec cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def known_zone(field: str, zone: str) -> None:
    """Refuses ``zone`` unless it is an IANA time zone this machine knows."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{field} {zone!r} is not a known time zone") from error
