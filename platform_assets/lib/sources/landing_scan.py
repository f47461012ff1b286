"""Which partitions' landing files appeared or changed since the last look, judged by content.

A landing-file sensor keeps the returned cursor between ticks. A file counts only once it has
stopped growing (the same size, modification and change times and inode on two looks in a row)
and is ready (its ready marker or manifest, if the spec declares them, has arrived). A settled file
counts as changed only when its SHA-256 differs from the one recorded: a file touched or copied
again with the same bytes is not loaded twice. Its bytes are hashed again whenever any of those
four differ: a file replaced by one of the same size and modification time (``cp -p``,
``rsync -t``) still has a new change time or inode, which no copying tool can set. A partition
whose file was removed is loaded again from the files it still has, and the removal is reported. A
file belongs to the partition whose key, written in the spec's key format, makes the file
pattern's ``{date}`` match the file's name. A file that is a link leading out of the landing zone
is refused, never read.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from platform_assets.lib.ingestion.spec import KEY_FORMAT_FIELDS

_KEY = "{date}"
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class LandingScan:
    """The partitions to load, each with a fingerprint of its files' content, and the next
    cursor; and what the scan saw but did not request: files still growing (``settling``),
    files not ready and why (``waiting``), files gone since they were seen (``removed``), and
    files refused (``refused``: why)."""

    changed_keys: dict[str, str]
    cursor: dict
    settling: list[str]
    waiting: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def key_matcher(pattern: str, key_format: str) -> Callable[[str], str | None]:
    """A function giving the partition key (written as ``key_format``) whose files ``pattern``
    matches ``name`` as, or None: the same glob matching the asset uses to list a partition's
    files."""
    key_shape = re.escape(key_format)
    for format_field, digits in KEY_FORMAT_FIELDS.items():
        key_shape = key_shape.replace(re.escape(format_field), digits)
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


def _file_state(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _known_state(known: dict) -> list[int | None]:
    return [known.get(name) for name in ("size", "mtime_ns", "ctime_ns", "ino")]


def scan_landing(
    directory: Path,
    pattern: str,
    key_format: str,
    cursor: dict | None,
    is_partition: Callable[[str], bool],
    zone: Path | None = None,
    not_ready: Callable[[Path], str | None] | None = None,
) -> LandingScan:
    """Compare ``directory`` with the ``cursor`` of the last scan (None: nothing seen yet).

    Only files whose key ``is_partition`` accepts are considered; the others wait, saying why,
    and are looked at again on later scans (a file for today waits until today is a partition),
    as are the files ``not_ready`` gives a reason for, and a file matching the pattern without
    naming a key. A file resolving outside ``zone`` is refused.
    """
    previous = cursor or {"seen": {}, "settling": {}}
    seen: dict[str, dict] = {}
    settling: dict[str, list[int]] = {}
    waiting: dict[str, str] = {}
    refused: dict[str, str] = {}
    changed: set[str] = set()
    key_of = key_matcher(pattern, key_format)
    inside = zone.resolve() if zone is not None else None
    present = sorted(directory.iterdir()) if directory.is_dir() else []
    for path in present:
        key = key_of(path.name)
        if key is None:
            if fnmatchcase(path.name, pattern.replace(_KEY, "*")):
                waiting[path.name] = f"its name matches {pattern} but names no {key_format} key"
            continue
        if not is_partition(key):
            waiting[path.name] = (
                f"{key} is not a partition (yet): a day becomes one once it has ended, and keys"
                " outside the partitions' range never do"
            )
            continue
        if inside is not None and not path.resolve().is_relative_to(inside):
            refused[path.name] = f"it leads out of the landing zone, to {path.resolve()}"
            continue
        if not path.is_file():
            continue
        known = previous["seen"].get(path.name)
        reason = not_ready(path) if not_ready is not None else None
        if reason:
            waiting[path.name] = reason
            if known is not None:
                seen[path.name] = known
            continue
        state = _file_state(path)
        if known is not None and _known_state(known) == state:
            seen[path.name] = known
            continue
        if previous["settling"].get(path.name) != state:
            settling[path.name] = state  # still growing, or first seen: look again next time
            if known is not None:
                seen[path.name] = known
            continue
        sha256 = file_sha256(path)
        seen[path.name] = {
            "key": key,
            **dict(zip(("size", "mtime_ns", "ctime_ns", "ino"), state, strict=True)),
            "sha256": sha256,
        }
        if known is None or known["sha256"] != sha256:
            changed.add(key)
    removed = sorted(name for name in previous["seen"] if name not in seen)
    gone = {previous["seen"][name]["key"] for name in removed}
    changed |= {key for key in gone if any(f["key"] == key for f in seen.values())}
    by_key: dict[str, dict[str, dict]] = {}
    for name, known in seen.items():
        by_key.setdefault(known["key"], {})[name] = known
    return LandingScan(
        changed_keys={key: _fingerprint(by_key[key]) for key in sorted(changed)},
        cursor={"seen": seen, "settling": settling},
        settling=sorted(settling),
        waiting=waiting,
        removed=removed,
        refused=refused,
    )
