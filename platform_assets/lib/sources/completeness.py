"""Whether a landing file is complete: its ready marker, and its manifest's checksum and rows.

A spec may declare, per data file, a ready marker (``ready_marker: "{file}.done"``: the producer
writes it once the file is whole) and a manifest (``manifest: "{file}.manifest.json"``: a JSON
object with ``sha256`` and/or ``rows``, the file's data records). Both sit beside the file, named
from its name. A file whose marker or manifest is missing is not ready: the sensor waits for it
and a load refuses it. A manifest's checksum is checked before the file is read and its row count
once it has been read, so a file that does not match loads nothing. What was checked is kept with
the file's lines in the accounting.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from platform_assets.lib.sources.landing_readers import LandingFileError
from platform_assets.lib.sources.landing_scan import file_sha256

FILE = "{file}"


class FileManifest(BaseModel):
    """What a producer says of a file it delivered."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    rows: int | None = Field(default=None, ge=0)


@dataclass(frozen=True)
class Completeness:
    """What vouches for a file: the checks it passed before reading (``evidence``), the rows its
    manifest expects (checked after reading), and whether its producer declared it whole (a
    marker, or a checksum that matched), which makes a last line without a line break whole too.
    """

    evidence: tuple[str, ...] = ()
    expected_rows: int | None = None
    declared_whole: bool = False

    def describe(self) -> str:
        """The checks, as the accounting records them."""
        return "; ".join(self.evidence)


def companion(path: Path, template: str) -> Path:
    """The file named by ``template`` (``{file}`` standing for the data file's name) beside
    ``path``."""
    return path.with_name(template.replace(FILE, path.name))


def missing_companion(
    name: str, ready_marker: str | None, manifest: str | None, arrived: Callable[[str], bool]
) -> str | None:
    """Why the file ``name`` is not ready to load (its marker or manifest, named from it, has not
    ``arrived``), or None."""
    for kind, template in (("ready marker", ready_marker), ("manifest", manifest)):
        if template and not arrived(template.replace(FILE, name)):
            return f"its {kind} {template.replace(FILE, name)} has not arrived"
    return None


def not_ready(path: Path, ready_marker: str | None, manifest: str | None) -> str | None:
    """Why ``path`` is not ready to load (its marker or manifest has not arrived), or None."""
    return missing_companion(
        path.name, ready_marker, manifest, lambda name: path.with_name(name).is_file()
    )


def _manifest_of(path: Path, template: str) -> FileManifest:
    place = companion(path, template)
    try:
        return FileManifest.model_validate(json.loads(place.read_bytes()))
    except (OSError, ValueError, ValidationError) as error:
        raise LandingFileError(
            f"manifest {place} of landing file {path} cannot be read (a JSON object with"
            f" 'sha256' and/or 'rows'): {error}"
        ) from error


def check_before_reading(
    path: Path, ready_marker: str | None, manifest: str | None
) -> Completeness:
    """Refuse ``path`` unless its marker and manifest are there and its checksum matches the
    manifest's; what was checked, and the rows to expect."""
    waiting = not_ready(path, ready_marker, manifest)
    if waiting:
        raise LandingFileError(f"landing file {path} is not ready to load: {waiting}")
    evidence = [f"ready marker {companion(path, ready_marker).name}"] if ready_marker else []
    expected = None
    if manifest:
        declared = _manifest_of(path, manifest)
        if declared.sha256 is not None:
            found = file_sha256(path)
            if found != declared.sha256.lower():
                raise LandingFileError(
                    f"landing file {path} does not match its manifest: sha256 {found}, the"
                    f" manifest says {declared.sha256}; the file is incomplete or changed"
                )
            evidence.append("manifest sha256")
        expected = declared.rows
    # A ready marker, or a checksum that matched, vouches for the whole file (before any row).
    return Completeness(tuple(evidence), expected, declared_whole=bool(evidence))


def check_rows_read(path: Path, completeness: Completeness, records_read: int) -> Completeness:
    """Refuse ``path`` if its manifest expects another number of rows than were read; the
    evidence with the rows check added."""
    if completeness.expected_rows is None:
        return completeness
    if records_read != completeness.expected_rows:
        raise LandingFileError(
            f"landing file {path} holds {records_read} records, its manifest says"
            f" {completeness.expected_rows}; nothing of it was loaded"
        )
    evidence = (*completeness.evidence, f"manifest rows {records_read}")
    return replace(completeness, evidence=evidence)
