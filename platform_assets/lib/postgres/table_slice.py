"""What part of which table an IO-manager call writes or reads."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TimeRange:
    """A half-open, time-zone-aware window ``[start, end)`` of a time-partitioned asset."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class TableSlice:
    """A table, and the rows of it that one partition (or a range of partitions) owns.

    ``partition_column`` and ``time_range`` are both None for an unpartitioned asset, which owns
    the whole table. ``partition_label`` names the partition in logs, lock keys and errors.
    """

    schema: str
    table: str
    partition_column: str | None = None
    time_range: TimeRange | None = None
    partition_label: str | None = None
    columns: tuple[str, ...] | None = None

    @property
    def qualified_name(self) -> str:
        """``schema.table`` for people (logs, metadata); SQL always quotes the two parts instead."""
        return f"{self.schema}.{self.table}"

    @property
    def lock_key(self) -> str:
        """The advisory-lock key serialising writers of this slice."""
        return f"{self.qualified_name}|{self.partition_label or '*'}"
