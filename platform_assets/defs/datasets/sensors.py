"""Each landing-file dataset's sensor: load exactly the partitions whose files appeared or changed.

The cursor remembers every file's size, modification and change times, inode and SHA-256
(``lib/sources/landing_scan``): a file is requested once it has stopped growing and is ready (its
ready marker or manifest arrived, when the spec declares them), a file whose bytes did not change
is never requested again, and a changed file is requested once, even when it kept its size and
modification time. Adjacent changed
partitions go in one range run (up to the dataset's ``max_partitions_per_run``, when it sets one).
"""

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg

from platform_assets.defs.datasets.jobs import LOAD_JOBS
from platform_assets.defs.datasets.landing import landing_materialization, unloaded_observation
from platform_assets.defs.datasets.partitions import dataset_partitions
from platform_assets.defs.datasets.specs import DATASET_SPECS
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.logging import platform_logger
from platform_assets.lib.sources.completeness import missing_companion, not_ready
from platform_assets.lib.sources.landing_readers import LandingFilesSource
from platform_assets.lib.sources.landing_scan import LandingScan, scan_landing, scan_objects
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.sources.scan_state import GENERATION, store_state, stored_state
from platform_assets.lib.warehouse.resource import Warehouse

LANDING_SENSOR_INTERVAL_S = 15
# The cursor's digest of the files last reported as not loaded (the scan ignores the key).
UNLOADED_REPORTED = "unloaded_reported"


def _digest(fingerprints: Iterable[str]) -> str:
    return hashlib.sha256(",".join(fingerprints).encode()).hexdigest()[:16]


def adjacent_runs(
    partitions_def: dg.TimeWindowPartitionsDefinition, keys: list[str], longest: int
) -> list[list[str]]:
    """``keys`` (sorted) cut into runs of adjacent partitions, each at most ``longest`` long."""
    runs: list[list[str]] = []
    for key in keys:
        last = runs[-1] if runs else None
        if (
            last is not None
            and len(last) < longest
            and partitions_def.get_next_partition_key(last[-1]) == key
        ):
            last.append(key)
        else:
            runs.append([key])
    return runs


def _scan_zone(
    landing: LandingZone,
    spec: DatasetSpec,
    cursor: dict | None,
    is_partition: Callable[[str], bool],
) -> LandingScan:
    """The dataset's files in the landing zone against the ``cursor``: a directory's files, or
    an object store's objects (listed by key, size and ETag). A file for a key that is not a
    partition yet, or whose ready marker or manifest has not arrived, waits."""
    source = spec.source
    assert isinstance(source, LandingFilesSource) and spec.partitions is not None
    store = landing.object_store()
    if store is not None:
        objects = store.objects(source.directory)
        names = {landed.name for landed in objects}
        return scan_objects(
            objects,
            source.pattern,
            spec.partitions.format,
            cursor,
            is_partition,
            not_ready=lambda name: missing_companion(
                name, source.ready_marker, source.manifest, names.__contains__
            ),
        )
    zone = Path(landing.directory)
    return scan_landing(
        zone / source.directory,
        source.pattern,
        spec.partitions.format,
        cursor,
        is_partition,
        zone=zone,
        not_ready=lambda path: not_ready(path, source.ready_marker, source.manifest),
    )


def build_landing_sensor(spec: DatasetSpec) -> dg.SensorDefinition:
    """The landing-file sensor of a dataset read from landing files."""
    source = spec.source
    assert isinstance(source, LandingFilesSource)
    partitions_def = dataset_partitions(spec)
    sensor_name = f"{spec.name}_landing_files"

    @dg.sensor(
        name=sensor_name,
        job=LOAD_JOBS[spec.name],
        minimum_interval_seconds=LANDING_SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Loads the partitions whose {spec.name} landing files ({source.directory}/"
            f"{source.pattern}) appeared or changed (by content), once they stop growing."
        ),
    )
    def landing_files_changed(
        context: dg.SensorEvaluationContext, landing: LandingZone, warehouse: Warehouse
    ) -> dg.SensorResult:
        """Requests each changed partition once; what was seen is kept in the warehouse, the
        cursor points at it (``lib/sources/scan_state``). The tick says which files wait and
        why, which were removed after loading, and which were refused."""
        cursor = json.loads(context.cursor) if context.cursor else None
        log = platform_logger().bind(sensor=sensor_name)
        seen = stored_state(warehouse, sensor_name, cursor, log)
        scan = _scan_zone(landing, spec, seen, partitions_def.has_partition_key)
        generation = (cursor or {}).get(GENERATION)
        if scan.cursor != seen or generation is None:
            generation = store_state(warehouse, sensor_name, cursor, scan.cursor, log)
        notes = [
            *(f"{name} waits: {why}" for name, why in scan.waiting.items()),
            *(f"{name} was removed after it was seen; its rows stay" for name in scan.removed),
            *(f"{name} is refused: {why}" for name, why in scan.refused.items()),
        ]
        for note in notes:
            context.log.warning(note)
        requests = [
            dg.RunRequest(
                run_key=f"{run[0]}..{run[-1]}:" + _digest(scan.changed_keys[key] for key in run),
                tags={
                    "dagster/asset_partition_range_start": run[0],
                    "dagster/asset_partition_range_end": run[-1],
                    "trigger": "landing_files",
                },
            )
            for run in adjacent_runs(
                partitions_def,
                list(scan.changed_keys),
                spec.partitions.max_partitions_per_run or len(scan.changed_keys),
            )
        ]
        skip = None
        if not requests:
            if scan.settling:
                notes.append(f"waiting for {scan.settling} to stop growing")
            said = "".join(f"; {note}" for note in notes)
            skip = dg.SkipReason(f"no new or changed {spec.name} landing file{said}")
        events: list[dg.AssetMaterialization | dg.AssetObservation] = [
            landing_materialization(spec, key, fingerprint)
            for key, fingerprint in scan.changed_keys.items()
        ]
        unloaded = {
            **dict.fromkeys(scan.settling, "still growing: loads once its size holds"),
            **scan.waiting,
            **{name: f"refused: {why}" for name, why in scan.refused.items()},
        }
        # The landing asset says which files are not loaded and why, each time that changes.
        reported = _digest(f"{name}:{why}" for name, why in sorted(unloaded.items()))
        if reported != (cursor or {}).get(UNLOADED_REPORTED):
            events.append(unloaded_observation(spec, unloaded))
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=skip,
            cursor=json.dumps({GENERATION: generation, UNLOADED_REPORTED: reported}),
            asset_events=events,
        )

    return landing_files_changed


LANDING_SENSORS = [
    build_landing_sensor(spec)
    for spec in DATASET_SPECS
    if isinstance(spec.source, LandingFilesSource)
]
