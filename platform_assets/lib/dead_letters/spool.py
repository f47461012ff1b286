"""A write's dead letters, kept in a temporary Arrow file until the write's transaction takes them.

A large partition can have many dead letters (1% of 10M rows is 100k, ~65 MB as Arrow); keeping
them on disk instead of in memory is what keeps a streamed write's memory flat. They are COPYed in
at the end of the write, batch by batch, in the same transaction as the rows.
"""

import os
import tempfile
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.ingestion.result import DEAD_LETTER_SCHEMA


class DeadLetterSpool:
    """Append dead-letter tables; count them per partition; read them back once, in order."""

    def __init__(self) -> None:
        self.per_partition: Counter[str] = Counter()
        self._path: str | None = None
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def add(self, letters: pa.Table) -> None:
        """Spool ``letters`` (``DEAD_LETTER_SCHEMA``)."""
        if not letters.num_rows:
            return
        for entry in pc.value_counts(letters.column("partition_key")).to_pylist():
            self.per_partition[entry["values"]] += entry["counts"]
        if self._writer is None:
            descriptor, self._path = tempfile.mkstemp(prefix="dead-letters-", suffix=".arrows")
            os.close(descriptor)
            self._sink = pa.OSFile(self._path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, DEAD_LETTER_SCHEMA)
        self._writer.write_table(letters.cast(DEAD_LETTER_SCHEMA))

    def __len__(self) -> int:
        return sum(self.per_partition.values())

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every spooled dead letter, read back from the file one batch at a time."""
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()  # type: ignore[union-attr]
        self._writer = None
        with pa.OSFile(self._path, "rb") as source:  # type: ignore[arg-type]
            yield from pa.ipc.open_stream(source)

    def close(self) -> None:
        """Delete the file (whether or not it was read)."""
        if self._writer is not None:
            self._writer.close()
            self._sink.close()  # type: ignore[union-attr]
            self._writer = None
        if self._path is not None:
            os.unlink(self._path)
            self._path = None
