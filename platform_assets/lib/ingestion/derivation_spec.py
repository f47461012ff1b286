"""How a derived column is computed, as a spec declares it (``derive: {kind: ..., ...}``).

A derived column is not read from the source: it is computed from the row's source fields
before validation, as text, and then typed and checked like any column, so it can carry rules
and be the partition column. ``produces`` is the column type a derivation's text is written for
(None: any type the text parses as); ``inputs`` the source columns it reads, each with the types
it accepts (None: any).
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from platform_assets.lib.ingestion.spec_parts import StrictModel, known_zone


class DateFromParts(StrictModel):
    """A date from integer ``year``, ``month`` and ``day`` columns (``2026``, ``3``, ``8``)."""

    kind: Literal["date_from_parts"]
    year: str
    month: str
    day: str
    produces: ClassVar[str | None] = "date"

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {name: ("integer",) for name in (self.year, self.month, self.day)}


class LocalDate(StrictModel):
    """The calendar date, in ``timezone``, of a timestamptz ``column``'s instant."""

    kind: Literal["local_date"]
    column: str
    timezone: str
    produces: ClassVar[str | None] = "date"

    @model_validator(mode="after")
    def _zone(self) -> "LocalDate":
        known_zone("derive.timezone", self.timezone)
        return self

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {self.column: ("timestamptz",)}


class LocalTimestamp(StrictModel):
    """The wall-clock time, in ``timezone``, of a timestamptz ``column``'s instant (a
    ``timestamp`` without zone)."""

    kind: Literal["local_timestamp"]
    column: str
    timezone: str
    produces: ClassVar[str | None] = "timestamp"

    @model_validator(mode="after")
    def _zone(self) -> "LocalTimestamp":
        known_zone("derive.timezone", self.timezone)
        return self

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {self.column: ("timestamptz",)}


class TimestampFromDateAndClock(StrictModel):
    """The instant of a ``date`` column's day at a ``clock`` column's ``HHMM`` (a number: ``530``
    is 05:30, ``0`` midnight) in ``timezone``. A clock time that does not exist that day, or
    happens twice (the hours the clocks change), is refused rather than guessed."""

    kind: Literal["timestamp_from_date_and_clock"]
    date: str
    clock: str
    timezone: str = "UTC"
    produces: ClassVar[str | None] = "timestamptz"

    @model_validator(mode="after")
    def _zone(self) -> "TimestampFromDateAndClock":
        known_zone("derive.timezone", self.timezone)
        return self

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {self.date: ("date",), self.clock: ("integer", "text")}


class Cast(StrictModel):
    """Another column's text, typed as this column's type (``amount`` read as text, typed here
    as a decimal)."""

    kind: Literal["cast"]
    column: str
    produces: ClassVar[str | None] = None

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {self.column: None}


class Constant(StrictModel):
    """The same ``value`` on every row (the source system, a currency the export leaves out)."""

    kind: Literal["constant"]
    value: str
    produces: ClassVar[str | None] = None

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {}


class Concat(StrictModel):
    """``columns`` joined with ``separator`` (``AA`` and ``1234`` as ``AA-1234``); missing if
    any of them is."""

    kind: Literal["concat"]
    columns: list[str] = Field(min_length=2)
    separator: str = ""
    produces: ClassVar[str | None] = None

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return dict.fromkeys(self.columns)


class PartitionStart(StrictModel):
    """The start of the partition the row is loaded into: its day for daily partitions (a
    ``date``), or its first instant (a ``timestamptz``; a ``timestamp`` gets the local wall
    clock). For snapshot files whose rows carry no date of their own: the day a file is delivered
    for is the rows' partition."""

    kind: Literal["partition_start"]
    produces: ClassVar[str | None] = None
    gives: ClassVar[tuple[str, ...]] = ("date", "timestamptz", "timestamp")

    def inputs(self) -> dict[str, tuple[str, ...] | None]:
        return {}


Derivation = Annotated[
    DateFromParts
    | LocalDate
    | LocalTimestamp
    | TimestampFromDateAndClock
    | Cast
    | Constant
    | Concat
    | PartitionStart,
    Field(discriminator="kind"),
]
