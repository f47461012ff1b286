"""Which table an IO-manager call writes or reads, and exactly which partitions of it."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

WHOLE_TABLE = "*"  # the partition key of an unpartitioned table (its digest, its accounting)


def warehouse_table(asset_key: Sequence[str], default_schema: str = "public") -> tuple[str, str]:
    """Where an asset's table is unless its metadata says otherwise: the schema from the key's
    prefix (``default_schema`` without one), the table from its last part."""
    return "_".join(asset_key[:-1]) or default_schema, asset_key[-1]


@dataclass(frozen=True)
class TimeRange:
    """A half-open, time-zone-aware window ``[start, end)``."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class PartitionSlice:
    """One partition and the rows it owns.

    A time-window partition owns the rows whose single partition column falls in ``window``; a
    static, dynamic or multi-dimensional partition owns the rows whose partition columns equal
    ``values`` (one per column, as the partition key's text).
    """

    key: str
    window: TimeRange | None = None
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSlice:
    """A table and the partitions one call concerns (none: the whole, unpartitioned table)."""

    schema: str
    table: str
    partition_columns: tuple[str, ...] = ()
    partitions: tuple[PartitionSlice, ...] = ()
    columns: tuple[str, ...] | None = None

    @property
    def qualified_name(self) -> str:
        """``schema.table`` for people (logs, metadata); SQL always quotes the two parts instead."""
        return f"{self.schema}.{self.table}"

    @property
    def is_partitioned(self) -> bool:
        """Whether the slice is a set of partitions rather than the whole table."""
        return bool(self.partitions)

    @property
    def label(self) -> str:
        """The partitions in logs and errors: one key, ``first..last``, or ``(whole table)``."""
        if not self.partitions:
            return "(whole table)"
        keys = [partition.key for partition in self.partitions]
        return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)} partitions)"

    def lock_keys(self) -> list[str]:
        """Advisory-lock keys serialising writers, one per partition, in a fixed (sorted) order."""
        if not self.partitions:
            return [f"{self.qualified_name}|*"]
        return sorted(f"{self.qualified_name}|{partition.key}" for partition in self.partitions)
