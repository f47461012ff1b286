"""Landing files compressed as producers ship them (gzip, bzip2, zstd) load like plain ones, every
line accounted for on the decompressed text; a truncated archive fails the load naming the file,
and nothing of the partition is stored. Materialised for real."""

import bz2
import gzip
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.datasets.test_spec_changes import DAY
from platform_assets_tests.helpers import fetch_all

READINGS = 2_000
CODECS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "zst": lambda data: pa.Codec("zstd").compress(data, asbytes=True),
}


def compressed_readings(suffix: str) -> DatasetSpec:
    spec = readings_spec(
        [
            {"name": "reading_id", "type": "integer", "required": True},
            {"name": "taken_on", "type": "date", "required": True},
            {"name": "value", "type": "integer"},
        ],
        primary_key=["reading_id"],
        partition_column="taken_on",
        fail_dead_letter_ratio=1,
    )
    pattern = f"readings_{{date}}.csv.{suffix}"
    return spec.model_copy(update={"source": spec.source.model_copy(update={"pattern": pattern})})


def csv_text() -> bytes:
    """Two thousand readings, the 500th with a value that is no integer (the file's line 501)."""
    lines = [f"{n},{DAY},{'x' if n == 500 else n * 3}" for n in range(1, READINGS + 1)]
    return ("reading_id,taken_on,value\n" + "\n".join(lines) + "\n").encode()


def load(spec: DatasetSpec, directory: Path, resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_dataset_asset(spec)],
        partition_key=DAY,
        resources={**resources, "landing": LandingZone(directory=str(directory))},
        raise_on_error=False,
    )


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_a_compressed_file_loads_every_line_accounted_for(
    tmp_path: Path, resources: dict, suffix: str
) -> None:
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.csv.{suffix}").write_bytes(CODECS[suffix](csv_text()))

    result = load(compressed_readings(suffix), tmp_path, resources)

    assert result.success
    warehouse = resources["warehouse"]
    stored = fetch_all(warehouse, sql.SQL("SELECT count(*), sum(value) FROM io_test.readings"))
    assert stored == [(READINGS - 1, sum(n * 3 for n in range(1, READINGS + 1) if n != 500))]
    ((source_ref,),) = fetch_all(
        warehouse, sql.SQL("SELECT source_ref FROM platform.dead_letter_records")
    )
    assert source_ref == f"readings_{DAY}.csv.{suffix}:501"
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_read"].value == READINGS


def test_a_truncated_archive_fails_the_load_naming_it_and_stores_nothing(
    tmp_path: Path, resources: dict
) -> None:
    whole = gzip.compress(csv_text())
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.csv.gz").write_bytes(whole[: len(whole) * 2 // 3])

    result = load(compressed_readings("gz"), tmp_path, resources)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "is a truncated or damaged gzip archive" in str(failure.step_failure_data.error)
    # The table was to be created in the write's transaction: rolled back with it.
    created = fetch_all(resources["warehouse"], sql.SQL("SELECT to_regclass('io_test.readings')"))
    assert created == [(None,)]
