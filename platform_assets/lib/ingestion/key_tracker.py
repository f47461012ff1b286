"""Primary keys already seen in a partition, across chunks, in bounded memory.

A single integer key is kept exactly in a Roaring bitmap (pyroaring): ids are usually dense or
clustered, so 10M of them take about a megabyte instead of 80 MB. Any other key is kept as a
64-bit hash of its values in sorted uint64 runs merged like a log-structured merge tree (O(log n)
runs, one binary search per run per lookup); a collision would dead-letter a good row as a repeat,
visibly, never load a duplicate.
"""

import numpy as np
import pyarrow as pa
from pyroaring import BitMap64

from platform_assets.lib.row_hash import row_hashes


class _SortedRuns:
    """A set of uint64 values as sorted arrays, merged as they grow."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def check_and_add(self, words: np.ndarray) -> np.ndarray:
        """Which of ``words`` were in the set; all of them are in it afterwards."""
        found = np.zeros(len(words), dtype=bool)
        for run in self._runs:
            positions = np.searchsorted(run, words).clip(max=len(run) - 1)
            found |= run[positions] == words
        new = np.unique(words[~found])
        if len(new):
            self._add_run(new)
        return found

    def _add_run(self, run: np.ndarray) -> None:
        self._runs.append(run)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newest = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), newest])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            self._runs.append(merged)


class _Bitmap:
    """A set of uint64 values as a compressed Roaring bitmap."""

    def __init__(self) -> None:
        self._bitmap = BitMap64()

    def check_and_add(self, words: np.ndarray) -> np.ndarray:
        """Which of ``words`` were in the set; all of them are in it afterwards."""
        chunk = BitMap64(words)
        overlap = self._bitmap & chunk
        self._bitmap |= chunk
        if not len(overlap):
            return np.zeros(len(words), dtype=bool)
        return np.isin(words, np.asarray(overlap.to_array(), dtype=np.uint64))


class KeyTracker:
    """Which rows of each chunk repeat a key of an earlier row (in this chunk or a previous one)."""

    def __init__(self, key_columns: list[str]) -> None:
        self._columns = key_columns
        self._seen: _Bitmap | _SortedRuns | None = None

    def _integer_key(self, rows: pa.Table) -> bool:
        return len(self._columns) == 1 and pa.types.is_integer(
            rows.schema.field(self._columns[0]).type
        )

    def _words(self, rows: pa.Table) -> np.ndarray:
        if self._integer_key(rows):
            values = rows.column(self._columns[0]).combine_chunks().cast(pa.int64())
            return values.fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
        digests = row_hashes(rows, self._columns)
        return np.frombuffer(digests.buffers()[1], dtype="<u8")[::2][: rows.num_rows].copy()

    def repeats(self, rows: pa.Table) -> np.ndarray:
        """Rows whose key was seen before (the first of several in a chunk is not a repeat);
        the keys of the other rows are remembered."""
        if self._seen is None:
            self._seen = _Bitmap() if self._integer_key(rows) else _SortedRuns()
        words = self._words(rows)
        first = np.zeros(len(words), dtype=bool)
        first[np.unique(words, return_index=True)[1]] = True
        return ~first | self._seen.check_and_add(words)
