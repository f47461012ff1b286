"""What one write is: its mode, its request, its result, and the errors it can end in.

Write modes (each in a module of its own):

- ``replace_partition``: DELETE exactly each partition's rows, COPY the new ones.
- ``upsert``: COPY into a temporary staging table, then ``INSERT … ON CONFLICT (primary key) DO
  UPDATE … WHERE target._row_hash IS DISTINCT FROM excluded._row_hash``: unchanged rows are not
  rewritten at all.
- ``append``: COPY the new rows in.
- ``replace_table`` (unpartitioned): COPY into a new table shaped like the target, then swap the two
  by renaming and drop the old one; readers see the old table or the new one, never a mix.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import pyarrow as pa

from platform_assets.lib.dead_letters.side_writes import SideWrite
from platform_assets.lib.row_hash import ROW_HASH_COLUMN
from platform_assets.lib.tables import bulk_load
from platform_assets.lib.tables.content_digests import WHOLE_TABLE
from platform_assets.lib.tables.schema import Column
from platform_assets.lib.tables.table_slice import PartitionSlice, TableSlice

if TYPE_CHECKING:  # selected_rows raises this module's errors
    from platform_assets.lib.io_manager.selected_rows import SelectedRows


class WriteMode(StrEnum):
    """How a write changes the table (see the module docstring)."""

    REPLACE_PARTITION = "replace_partition"
    UPSERT = "upsert"
    APPEND = "append"
    REPLACE_TABLE = "replace_table"


# The modes that COPY straight into the target table, so can rebuild its indexes (bulk_load).
BULK_LOAD_MODES = (WriteMode.REPLACE_PARTITION, WriteMode.APPEND)


class PartitionWriteError(Exception):
    """Writing a slice failed; the transaction was rolled back, so its previous rows are intact."""


class RowsOutsidePartitionError(ValueError):
    """The frame holds rows whose partition columns fall outside the partitions being written."""


class DuplicateKeyError(ValueError):
    """The frame repeats a primary key, which an upsert cannot apply unambiguously."""


@dataclass(frozen=True)
class WriteRequest:
    """One write: where, the columns written (``_row_hash`` is added while streaming), how."""

    table_slice: TableSlice
    data_schema: pa.Schema
    mode: WriteMode
    hash_columns: list[str]
    primary_key: list[str] = field(default_factory=list)
    indexes: list[list[str]] = field(default_factory=list)
    partition_index: str = "btree"
    settings: dict[str, str] = field(default_factory=dict)
    side_writes: tuple[SideWrite, ...] = ()
    expected_rows: int = 0  # rows the write loads at least (its first chunk's): see bulk_load
    native_partitions: bool = False  # a new table is created natively partitioned (see there)
    bulk_load_min_rows: int | None = bulk_load.BULK_LOAD_MIN_ROWS
    run_id: str = ""  # the run writing: its dead letters spool under its own directory
    hidden_from_reader: list[str] = field(default_factory=list)  # personal data (reader_access)
    # The columns the writer declares required (NOT NULL); None: it declares nothing of the kind.
    required: tuple[str, ...] | None = None
    # Rows a SELECT computes in the warehouse, inserted instead of streamed (selected_rows).
    selected: "SelectedRows | None" = None

    @property
    def not_null(self) -> set[str]:
        """The columns a new table makes NOT NULL: the required ones and the key's."""
        return {*(self.required or ()), *self.primary_key}

    @property
    def schema(self) -> pa.Schema:
        """The columns written: the data's, then ``_row_hash``."""
        return self.data_schema.append(pa.field(ROW_HASH_COLUMN, pa.binary(16)))


@dataclass(frozen=True)
class WriteResult:
    """What one write did, per partition key (``*`` for an unpartitioned table)."""

    columns: tuple[Column, ...]
    rows_deleted: dict[str, int]
    rows_inserted: dict[str, int]
    rows_updated: dict[str, int]
    rows_unchanged: dict[str, int]
    row_counts: dict[str, int]
    content_version: str
    rows_moved: int = 0  # rows whose partition columns an upsert changed
    indexes_rebuilt: int = 0  # indexes a bulk load dropped and built again (see bulk_load)

    def changes(self, key: str) -> dict[str, int]:
        """Rows deleted, inserted, updated and left unchanged in partition ``key``."""
        return {
            "rows_deleted": self.rows_deleted[key],
            "rows_inserted": self.rows_inserted[key],
            "rows_updated": self.rows_updated[key],
            "rows_unchanged": self.rows_unchanged[key],
        }


def written_partitions(table_slice: TableSlice) -> list[PartitionSlice | None]:
    return list(table_slice.partitions) or [None]


def partition_key(partition: PartitionSlice | None) -> str:
    return WHOLE_TABLE if partition is None else partition.key
