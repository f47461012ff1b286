"""A landing zone on S3-compatible object storage (``PLATFORM_LANDING_URL=s3://bucket/prefix``).

Read through obstore (the Rust ``object_store`` crate's Python binding): credentials, region and
endpoint come from the standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``, ``AWS_ENDPOINT_URL``; ``AWS_ALLOW_HTTP=true`` for a plain-HTTP server such as a
local MinIO), or an instance role, never from the spec. A dataset's ``source.directory`` is a
prefix under the zone's, and its files are the objects directly under it.

Objects differ from local files in two ways the platform relies on. A PUT is atomic: an object is
listed only once whole, so it needs no settling. And its ETag changes with its content: the
sensor compares key, size and ETag, and never reads an object to decide whether it changed.

A load reads each object through a local copy streamed in chunks of ``CHUNK_BYTES`` (with its
ready marker and manifest, if the spec declares them), one object at a time, removed once read:
the readers then seek, count lines and check manifests exactly as for a local file, in bounded
memory and with at most one object on disk. Copies a killed process left behind are removed by
the next load on the machine.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import obstore
import psutil
from obstore.store import S3Store

from platform_assets.lib.sources.completeness import FILE
from platform_assets.lib.sources.landing_scan import LandedObject

SCHEMES = ("s3://",)
CHUNK_BYTES = 8 << 20
_STAGING_PREFIX = "platform-landing-"


def is_object_store(root: str) -> bool:
    """Whether the landing zone ``root`` is an object store URL rather than a local directory."""
    return root.startswith(SCHEMES)


class ObjectLanding:
    """The landing zone at ``url`` (``s3://bucket/prefix``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._store = S3Store.from_url(self.url)

    def objects(self, directory: str) -> list[LandedObject]:
        """The objects directly under ``directory`` (a dataset's ``source.directory``), by name."""
        listed = obstore.list_with_delimiter(self._store, prefix=f"{directory.strip('/')}/")
        found = [
            LandedObject(meta["path"].rsplit("/", 1)[-1], meta["size"], meta["e_tag"] or "")
            for meta in listed["objects"]
        ]
        return sorted(found, key=lambda found_object: found_object.name)

    def object_url(self, directory: str, name: str) -> str:
        """The object's URL, as the materialisation's ``source_files`` shows it."""
        return f"{self.url}/{directory.strip('/')}/{name}"

    @contextmanager
    def local_copy(self, directory: str, name: str, companions: list[str]) -> Iterator[Path]:
        """A local copy of the object ``name``, and of those of its ``companions`` (templates
        naming its ready marker and manifest) that exist, removed on leaving."""
        _remove_stale_copies()
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-"))
        try:
            self._download(f"{directory.strip('/')}/{name}", staging / name)
            for template in companions:
                with suppress(FileNotFoundError):  # the load then says it has not arrived
                    companion = template.replace(FILE, name)
                    self._download(f"{directory.strip('/')}/{companion}", staging / companion)
            yield staging / name
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def put(self, directory: str, path: Path) -> None:
        """Upload the local file ``path`` as the object of its name under ``directory``: one
        atomic PUT (multipart for large files), so the sensor never lists half of it."""
        obstore.put(self._store, f"{directory.strip('/')}/{path.name}", path)

    def _download(self, key: str, target: Path) -> None:
        """The object at ``key`` written to ``target`` chunk by chunk."""
        with target.open("wb") as file:
            for chunk in obstore.get(self._store, key).stream(min_chunk_size=CHUNK_BYTES):
                file.write(memoryview(chunk))


def _remove_stale_copies() -> None:
    """Remove the local copies of processes that are gone (a load killed while reading)."""
    for staging in Path(tempfile.gettempdir()).glob(f"{_STAGING_PREFIX}*-*"):
        pid = staging.name.removeprefix(_STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
