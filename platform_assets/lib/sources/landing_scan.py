"""Which partitions' landing files appeared or changed since the last look, judged by content.

A landing-file sensor keeps the returned cursor between ticks. A file counts only once it has
stopped growing (the same size and modification time on two looks in a row), and a settled file
counts as changed only when its SHA-256 differs from the one recorded: a file touched or copied
again with the same bytes is not loaded twice. A partition whose file was removed is loaded again
from the files it still has. A file belongs to the partition whose key, written in the spec's key
format, makes the file pattern's ``{date}`` match the file's name.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from platform_assets.lib.ingestion.spec import KEY_FORMAT_FIELDS

_KEY = "{date}"
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class LandingScan:
    """The partitions to load, each with a fingerprint of its files' content, and the next
    cursor."""

    changed_keys: dict[str, str]
    cursor: dict
    settling: list[str]


def key_matcher(pattern: str, key_format: str) -> Callable[[str], str | None]:
    """A function giving the partition key (written as ``key_format``) whose files ``pattern``
    matches ``name`` as, or None: the same glob matching the asset uses to list a partition's
    files."""
    key_shape = re.escape(key_format)
    for field, digits in KEY_FORMAT_FIELDS.items():
        key_shape = key_shape.replace(re.escape(field), digits)
    candidates = re.compile(f"(?=({key_shape}))")

    def key_of(name: str) -> str | None:
        for candidate in candidates.findall(name):
            if fnmatchcase(name, pattern.replace(_KEY, candidate)):
                return candidate
        return None

    return key_of


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(files: dict[str, dict]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]['sha256']}\n".encode())
    return digest.hexdigest()[:16]


def scan_landing(
    directory: Path,
    pattern: str,
    key_format: str,
    cursor: dict | None,
    is_partition: Callable[[str], bool],
) -> LandingScan:
    """Compare ``directory`` with the ``cursor`` of the last scan (None: nothing seen yet).

    Only files whose key ``is_partition`` accepts are considered; the others are looked at
    again on later scans (a file for today waits until today is a partition).
    """
    previous = cursor or {"seen": {}, "settling": {}}
    seen: dict[str, dict] = {}
    settling: dict[str, list[int]] = {}
    changed: set[str] = set()
    key_of = key_matcher(pattern, key_format)
    present = sorted(directory.iterdir()) if directory.is_dir() else []
    for path in present:
        key = key_of(path.name)
        if key is None or not path.is_file() or not is_partition(key):
            continue
        stat = path.stat()
        state = [stat.st_size, stat.st_mtime_ns]
        known = previous["seen"].get(path.name)
        if known is not None and [known["size"], known["mtime_ns"]] == state:
            seen[path.name] = known
            continue
        if previous["settling"].get(path.name) != state:
            settling[path.name] = state  # still growing, or first seen: look again next time
            if known is not None:
                seen[path.name] = known
            continue
        sha256 = file_sha256(path)
        seen[path.name] = {"key": key, "size": state[0], "mtime_ns": state[1], "sha256": sha256}
        if known is None or known["sha256"] != sha256:
            changed.add(key)
    removed = {known["key"] for name, known in previous["seen"].items() if name not in seen}
    changed |= {key for key in removed if any(f["key"] == key for f in seen.values())}
    by_key: dict[str, dict[str, dict]] = {}
    for name, known in seen.items():
        by_key.setdefault(known["key"], {})[name] = known
    return LandingScan(
        changed_keys={key: _fingerprint(by_key[key]) for key in sorted(changed)},
        cursor={"seen": seen, "settling": settling},
        settling=sorted(settling),
    )
