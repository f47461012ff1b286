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
is refused, never read. In an object store (``scan_objects``) an object is whole once listed and
its ETag stands for its content: it changed when its size or ETag did.
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


@dataclass(frozen=True)
class LandedObject:
    """One object directly under a dataset's prefix in an object store: its name (the last part
    of its key), size and ETag."""

    name: str
    size: int
    etag: str


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
        content = files[name].get("sha256") or files[name]["etag"]  # a file's, or an object's
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()[:16]


def _file_state(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _known_state(known: dict) -> list[int | None]:
    return [known.get(name) for name in ("size", "mtime_ns", "ctime_ns", "ino")]


def _partition_key(
    name: str,
    key_of: Callable[[str], str | None],
    pattern: str,
    key_format: str,
    is_partition: Callable[[str], bool],
    waiting: dict[str, str],
) -> str | None:
    """The partition key of the file ``name``, or None when it has none to load now (those that
    match the pattern are added to ``waiting``, saying why)."""
    key = key_of(name)
    if key is None:
        if fnmatchcase(name, pattern.replace(_KEY, "*")):
            waiting[name] = f"its name matches {pattern} but names no {key_format} key"
        return None
    if not is_partition(key):
        waiting[name] = (
            f"{key} is not a partition (yet): a day becomes one once it has ended, and keys"
            " outside the partitions' range never do"
        )
        return None
    return key


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
        key = _partition_key(path.name, key_of, pattern, key_format, is_partition, waiting)
        if key is None:
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
    return _scan(previous, seen, changed, settling, waiting, refused)


def scan_objects(
    objects: list[LandedObject],
    pattern: str,
    key_format: str,
    cursor: dict | None,
    is_partition: Callable[[str], bool],
    not_ready: Callable[[str], str | None] | None = None,
) -> LandingScan:
    """``scan_landing`` for the objects under a dataset's prefix in an object store.

    An object is listed only once whole (a PUT is atomic), so none settles; its ETag changes
    with its content, so an object counts as changed when its size or ETag differs from the
    cursor's, without reading it. ``not_ready`` gives why an object waits (its ready marker or
    manifest not listed yet).
    """
    previous = cursor or {"seen": {}, "settling": {}}
    seen: dict[str, dict] = {}
    waiting: dict[str, str] = {}
    changed: set[str] = set()
    key_of = key_matcher(pattern, key_format)
    for landed in objects:
        key = _partition_key(landed.name, key_of, pattern, key_format, is_partition, waiting)
        if key is None:
            continue
        known = previous["seen"].get(landed.name)
        reason = not_ready(landed.name) if not_ready is not None else None
        if reason:
            waiting[landed.name] = reason
            if known is not None:
                seen[landed.name] = known
            continue
        seen[landed.name] = {"key": key, "size": landed.size, "etag": landed.etag}
        if known is None or (known.get("size"), known.get("etag")) != (landed.size, landed.etag):
            changed.add(key)
    return _scan(previous, seen, changed, {}, waiting, {})


def _scan(
    previous: dict,
    seen: dict[str, dict],
    changed: set[str],
    settling: dict[str, list[int]],
    waiting: dict[str, str],
    refused: dict[str, str],
) -> LandingScan:
    """The scan's result: a partition whose file was removed is loaded again from the files it
    still has, and every changed partition gets the fingerprint of its files' content."""
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
