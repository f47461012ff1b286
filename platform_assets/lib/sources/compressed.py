"""Landing files compressed as their producers ship them (``.gz``, ``.bz2``, ``.zst``), read as a
stream of their decompressed bytes by pyarrow's codecs: memory stays one block, and every line
count (the reader's and the independent one) is of the decompressed text.

A truncated or damaged archive cannot be read to its end: the read raises ``DamagedArchive``
naming the file, and since a partition is written in one transaction nothing of it is loaded.
"""

import io
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


class DamagedArchive(OSError):
    """A compressed landing file that ends before its stream does, or is not what it claims."""


class _Checked(io.BufferedReader):
    """The decompressed stream, its codec's errors raised as ``DamagedArchive``."""

    def __init__(self, raw: pa.NativeFile, path: Path, codec: str) -> None:
        super().__init__(raw)  # type: ignore[arg-type]
        self._about = f"landing file {path} is a truncated or damaged {codec} archive"

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except OSError as error:
            raise DamagedArchive(f"{self._about}: {error}") from error

    def readline(self, size: int | None = -1) -> bytes:
        try:
            return super().readline(size)
        except OSError as error:
            raise DamagedArchive(f"{self._about}: {error}") from error


def open_landing_file(path: Path) -> BinaryIO:
    """The file's bytes, decompressed if its name ends in a codec's suffix."""
    codec = CODECS.get(path.suffix)
    if codec is None:
        return path.open("rb")
    return _Checked(pa.input_stream(str(path), compression=codec), path, codec)  # type: ignore[return-value]
