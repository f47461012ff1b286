"""A write's dead letters, kept in a temporary Arrow file until the write's transaction takes them.

A large partition can have many dead letters (1% of 10M rows is 100k, ~65 MB as Arrow); keeping
them on disk instead of in memory is what keeps a streamed write's memory flat. They are COPYed in
at the end of the write, batch by batch, in the same transaction as the rows.

The file lives in the run's own directory (``<data dir>/spool/<run id>/``), named after the host
and process writing it, and is removed when the write ends, committed or not; the directory goes
with its last file. A process killed mid-write cannot remove its file: the next spool started on
the same host removes every file whose process is gone (``lib/process_files``).
"""

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib import settings
from platform_assets.lib.ingestion.result import DEAD_LETTER_SCHEMA
from platform_assets.lib.process_files import owner_tag, remove_abandoned

_PREFIX = "dead-letters-"


def spool_root() -> Path:
    """Where every run's spool directory lives."""
    return settings.data_dir() / "spool"


def remove_abandoned_spools(root: Path) -> list[Path]:
    """Delete the spool files this host's dead processes left under ``root`` (and the run
    directories they leave empty); what was removed."""
    removed = remove_abandoned(root.glob(f"*/{_PREFIX}*"), _PREFIX)
    for directory in {path.parent for path in removed}:
        with contextlib.suppress(OSError):  # not empty: a live write of the run still spools
            directory.rmdir()
    return removed


class DeadLetterSpool:
    """Append dead-letter tables; count them per partition; read them back once, in order."""

    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id or "no-run"
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
            root = spool_root()
            remove_abandoned_spools(root)
            directory = root / self.run_id
            directory.mkdir(parents=True, exist_ok=True)
            descriptor, self._path = tempfile.mkstemp(
                prefix=_PREFIX + owner_tag(), suffix=".arrows", dir=directory
            )
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
            with contextlib.suppress(OSError):  # another write of the run still spools there
                os.rmdir(os.path.dirname(self._path))
            self._path = None
