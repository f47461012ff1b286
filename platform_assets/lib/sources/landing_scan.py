"""Which days' landing files appeared or changed since the last look, judged by content.

A landing-file sensor keeps the returned cursor between ticks. A file counts only once it has
stopped growing (the same size and modification time on two looks in a row), and a settled file
counts as changed only when its SHA-256 differs from the one recorded: a file touched or copied
again with the same bytes is not loaded twice. A day whose file was removed is loaded again from
the files it still has.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

_DATE = "{date}"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class LandingScan:
    """The days to load, each with a fingerprint of its files' content, and the next cursor."""

    changed_days: dict[str, str]
    cursor: dict
    settling: list[str]


def day_matcher(pattern: str) -> Callable[[str], str | None]:
    """A function giving the day (``YYYY-MM-DD``) whose files ``pattern`` matches ``name`` as,
    or None: the same glob matching the asset uses to list a day's files."""

    def day_of(name: str) -> str | None:
        for candidate in _DAY.findall(name):
            if fnmatchcase(name, pattern.replace(_DATE, candidate)):
                return candidate
        return None

    return day_of


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
    directory: Path, pattern: str, cursor: dict | None, is_partition: Callable[[str], bool]
) -> LandingScan:
    """Compare ``directory`` with the ``cursor`` of the last scan (None: nothing seen yet).

    Only files whose day ``is_partition`` accepts are considered; the others are looked at
    again on later scans (a file for today waits until today is a partition).
    """
    previous = cursor or {"seen": {}, "settling": {}}
    seen: dict[str, dict] = {}
    settling: dict[str, list[int]] = {}
    changed: set[str] = set()
    day_of = day_matcher(pattern)
    present = sorted(directory.iterdir()) if directory.is_dir() else []
    for path in present:
        day = day_of(path.name)
        if day is None or not path.is_file() or not is_partition(day):
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
        seen[path.name] = {"day": day, "size": state[0], "mtime_ns": state[1], "sha256": sha256}
        if known is None or known["sha256"] != sha256:
            changed.add(day)
    removed = {known["day"] for name, known in previous["seen"].items() if name not in seen}
    changed |= {day for day in removed if any(f["day"] == day for f in seen.values())}
    by_day: dict[str, dict[str, dict]] = {}
    for name, known in seen.items():
        by_day.setdefault(known["day"], {})[name] = known
    return LandingScan(
        changed_days={day: _fingerprint(by_day[day]) for day in sorted(changed)},
        cursor={"seen": seen, "settling": settling},
        settling=sorted(settling),
    )
