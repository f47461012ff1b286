"""Primary keys already seen in a partition, across chunks, in bounded memory.

Keys are kept as sorted uint64 arrays merged like a log-structured merge tree: adding a chunk's
keys costs O(k log k), a lookup one binary search per level, and there are O(log n) levels. A single
integer key is kept exactly; a composite or text key by a 64-bit hash of its values (a collision
would dead-letter a good row as a repeat, visibly, never load a duplicate).
"""

import numpy as np
import pyarrow as pa

from platform_assets.lib.row_hash import row_hashes


class KeyTracker:
    """Which rows of each chunk repeat a key of an earlier row (in this chunk or a previous one)."""

    def __init__(self, key_columns: list[str]) -> None:
        self._columns = key_columns
        self._levels: list[np.ndarray] = []

    def _words(self, rows: pa.Table) -> np.ndarray:
        if len(self._columns) == 1 and pa.types.is_integer(
            rows.schema.field(self._columns[0]).type
        ):
            values = rows.column(self._columns[0]).combine_chunks().cast(pa.int64())
            return values.fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
        digests = row_hashes(rows, self._columns)
        return np.frombuffer(digests.buffers()[1], dtype="<u8")[::2][: rows.num_rows].copy()

    def _seen(self, words: np.ndarray) -> np.ndarray:
        seen = np.zeros(len(words), dtype=bool)
        for level in self._levels:
            positions = np.searchsorted(level, words).clip(max=len(level) - 1)
            seen |= level[positions] == words
        return seen

    def repeats(self, rows: pa.Table) -> np.ndarray:
        """Rows whose key was seen before (the first of several in a chunk is not a repeat);
        the keys of the other rows are remembered."""
        words = self._words(rows)
        first = np.zeros(len(words), dtype=bool)
        first[np.unique(words, return_index=True)[1]] = True
        repeated = ~first | self._seen(words)
        self._add(np.sort(words[~repeated]))
        return repeated

    def _add(self, level: np.ndarray) -> None:
        if not len(level):
            return
        self._levels.append(level)
        while len(self._levels) > 1 and len(self._levels[-2]) <= 2 * len(self._levels[-1]):
            newest = self._levels.pop()
            merged = np.concatenate([self._levels.pop(), newest])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            self._levels.append(merged)
