"""A stable 128-bit hash of each row, for change detection (upsert) and content versions.

The hash depends only on the *values*, read through Arrow's canonical representations: integers
of any width as int64, timestamps as UTC microseconds, dates as days, decimals by their text,
strings by their UTF-8 bytes, JSON by its sorted-key text. So the same row hashes the same across
runs, processes, machines, and pandas dtypes or versions (``Int64`` or ``int64``, ``str`` or
``object``), which ``pandas.util.hash_pandas_object`` does not promise. It is vectorised in
numpy: no per-row Python. Two independent 64-bit lanes (splitmix64 mixing, polynomial hashing of
variable-length bytes) make an accidental collision on a changed row negligible; it is not a
cryptographic hash.
"""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROW_HASH_COLUMN = "_row_hash"
_LANES = (
    (np.uint64(0x9E3779B97F4A7C15), np.uint64(0x100000001B3)),
    (np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x5BD1E9955BD1E995)),
)
_NULL_WORD = np.uint64(0x6A09E667F3BCC908)


def _splitmix64(words: np.ndarray) -> np.ndarray:
    words = words + np.uint64(0x9E3779B97F4A7C15)
    words = (words ^ (words >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    words = (words ^ (words >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return words ^ (words >> np.uint64(31))


def _fixed_width_words(values: pa.Array) -> np.ndarray:
    """One uint64 per value of a fixed-width column, in a dtype-independent canonical form."""
    kind = values.type
    if pa.types.is_timestamp(kind):
        values = values.cast(pa.timestamp("us", tz="UTC" if kind.tz else None)).cast(pa.int64())
    elif pa.types.is_date(kind):
        values = values.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    elif pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        values = values.cast(pa.int64())
    elif pa.types.is_floating(kind):
        floats = values.cast(pa.float64()).to_numpy(zero_copy_only=False).copy()
        floats[floats == 0.0] = 0.0  # -0.0 and 0.0 are the same value
        floats[np.isnan(floats)] = np.nan  # one NaN
        return floats.view(np.uint64)
    return values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)


def _bytes_of(values: pa.Array) -> pa.LargeBinaryArray:
    """The canonical bytes of a variable-width column's values."""
    kind = values.type
    if pa.types.is_decimal(kind):
        values = values.cast(pa.large_string())
    elif isinstance(kind, pa.BaseExtensionType):
        values = values.storage
    elif pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_map(kind):
        values = pa.array(
            [None if v is None else json.dumps(v, sort_keys=True) for v in values.to_pylist()],
            pa.large_string(),
        )
    return values.cast(pa.large_binary())


def _variable_width_words(values: pa.Array) -> list[np.ndarray]:
    """Per lane, a polynomial hash of each value's bytes and length, as uint64.

    Only the distinct values are hashed (then gathered back), so a low-cardinality text column
    costs almost nothing whatever its row count.
    """
    encoded = pc.dictionary_encode(_bytes_of(values))
    distinct = encoded.dictionary
    if not len(distinct):  # every value is null (or there are none): nulls hash apart
        return [np.zeros(len(values), dtype=np.uint64) for _ in _LANES]
    offsets = np.frombuffer(distinct.buffers()[1], dtype=np.int64)[
        distinct.offset : distinct.offset + len(distinct) + 1
    ]
    data = np.frombuffer(distinct.buffers()[2] or b"", dtype=np.uint8)
    first, last = int(offsets[0]), int(offsets[-1])
    starts, lengths = offsets[:-1] - first, np.diff(offsets)
    byte_values = data[first:last].astype(np.uint64) + np.uint64(1)
    positions = np.arange(last - first, dtype=np.int64) - np.repeat(starts, lengths)
    non_empty = lengths > 0
    indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
    lanes = []
    for _, multiplier in _LANES:
        sums = np.zeros(len(distinct), dtype=np.uint64)
        if last > first:
            powers = np.cumprod(np.full(int(lengths.max()), multiplier, dtype=np.uint64))
            sums[non_empty] = np.add.reduceat(byte_values * powers[positions], starts[non_empty])
        words = sums ^ (lengths.astype(np.uint64) * np.uint64(0xFF51AFD7ED558CCD))
        lanes.append(words[indices])
    return lanes


def _is_fixed_width(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_temporal(kind)
    )


HASH_CHUNK_ROWS = 131_072  # bounds the numpy temporaries to a few MB whatever the frame size


def row_hashes(table: pa.Table, columns: list[str]) -> pa.FixedSizeBinaryArray:
    """The 16-byte hash of every row of ``table`` over ``columns`` (in the order given)."""
    chunks = [
        _chunk_hashes(table.slice(start, HASH_CHUNK_ROWS), columns)
        for start in range(0, table.num_rows, HASH_CHUNK_ROWS)
    ]
    digest = b"".join(chunks)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), table.num_rows, [None, pa.py_buffer(digest)]
    )


def _chunk_hashes(table: pa.Table, columns: list[str]) -> bytes:
    lanes = [np.full(table.num_rows, seed, dtype=np.uint64) for seed, _ in _LANES]
    for position, name in enumerate(columns):
        column = table.column(name).combine_chunks()
        valid = (
            np.zeros(len(column), dtype=bool)
            if pa.types.is_null(column.type)
            else pc.is_valid(column).to_numpy(zero_copy_only=False)
        )
        if pa.types.is_null(column.type):
            per_lane = [np.zeros(len(column), dtype=np.uint64)] * len(_LANES)
        elif _is_fixed_width(column.type):
            per_lane = [_fixed_width_words(column)] * len(_LANES)
        else:
            per_lane = _variable_width_words(column)
        for lane, (_, multiplier) in enumerate(_LANES):
            words = np.where(valid, per_lane[lane], _NULL_WORD ^ np.uint64(position))
            lanes[lane] = _splitmix64(
                lanes[lane] * multiplier + _splitmix64(words + np.uint64(lane))
            )
    return np.stack(lanes, axis=1).astype("<u8").tobytes()


class ContentDigest:
    """An order-independent digest of a multiset of row hashes, built up batch by batch in O(n).

    The two 64-bit lanes are summed with wrap-around (a repeated row counts twice) and digested
    together with the row count; the same rows in any order and any batching give the same version.
    Sums can be taken apart again (``remove``) and put together (``merge``), so a partition's digest
    can be kept up to date from the rows a write adds and overwrites, without reading the rest.
    """

    def __init__(self) -> None:
        self._sums = np.zeros(2, dtype=np.uint64)
        self._count = 0

    @classmethod
    def from_parts(cls, lane_a: int, lane_b: int, count: int) -> "ContentDigest":
        """A digest from its stored ``parts``."""
        digest = cls()
        digest._sums = np.array([lane_a, lane_b], dtype=np.int64).view(np.uint64)
        digest._count = count
        return digest

    @property
    def parts(self) -> tuple[int, int, int]:
        """The two lane sums (as signed 64-bit integers, for a ``bigint`` column) and the count."""
        lane_a, lane_b = self._sums.view(np.int64).tolist()
        return lane_a, lane_b, self._count

    @property
    def count(self) -> int:
        """How many row hashes the digest holds."""
        return self._count

    def add(self, hashes: pa.Array | pa.ChunkedArray) -> None:
        """Fold ``hashes`` (16-byte row hashes, or bytea read back) into the digest."""
        self._sums += _lane_sums(hashes)
        self._count += len(hashes)

    def remove(self, hashes: pa.Array | pa.ChunkedArray) -> None:
        """Take ``hashes`` back out: the digest of the rows without them."""
        self._sums -= _lane_sums(hashes)
        self._count -= len(hashes)

    def merge(self, other: "ContentDigest") -> None:
        """Fold another digest in: the digest of both multisets of rows together."""
        self._sums += other._sums
        self._count += other._count

    def hexdigest(self) -> str:
        """The version of everything added so far."""
        summary = np.array([*self._sums, self._count], dtype="<u8").tobytes()
        return hashlib.md5(summary, usedforsecurity=False).hexdigest()


def _lane_sums(hashes: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each 64-bit lane of ``hashes`` summed with wrap-around."""
    if isinstance(hashes, pa.ChunkedArray):
        hashes = hashes.combine_chunks()
    if not pa.types.is_fixed_size_binary(hashes.type):  # as read back from a bytea column
        hashes = hashes.cast(pa.binary(16))
    if len(hashes) == 0:
        return np.zeros(2, dtype=np.uint64)
    lanes = np.frombuffer(hashes.buffers()[1], dtype="<u8")[
        hashes.offset * 2 : (hashes.offset + len(hashes)) * 2
    ].reshape(-1, 2)
    return lanes.sum(axis=0, dtype=np.uint64)


def content_version(hashes: pa.Array | pa.ChunkedArray) -> str:
    """The ``ContentDigest`` of ``hashes`` in one go."""
    digest = ContentDigest()
    digest.add(hashes)
    return digest.hexdigest()
