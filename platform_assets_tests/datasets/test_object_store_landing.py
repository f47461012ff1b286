"""A landing zone in an S3 bucket (``PLATFORM_LANDING_URL=s3://bucket/prefix``), against a real
S3-compatible server on localhost (moto's server mode, started here): the landing sensor lists
objects by key, size and ETag and requests each new or changed day once, loads read the objects
in chunks through one local copy at a time, and what is stored is exactly what the same files
load from a local directory. Evaluated and materialised through Dagster's own APIs."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.sensors import build_landing_sensor
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.lib import settings
from platform_assets.lib.logging import platform_logger
from platform_assets.lib.samples import sample_data
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.sources.scan_state import stored_state
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all, table_checksum

BUCKET, PREFIX = "landing", "zone"
ZONE_URL = f"s3://{BUCKET}/{PREFIX}"
ORDERS = SPECS_BY_NAME["orders"]
VOUCHED = ORDERS.model_copy(
    update={
        "source": ORDERS.source.model_copy(
            update={"ready_marker": "{file}.done", "manifest": "{file}.manifest.json"}
        )
    }
)
DAYS = [day.isoformat() for day in SAMPLE_DAYS]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on a free localhost port, killed with its process group."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """An empty bucket, reached through the standard AWS variables as a deployment sets them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "platform-test",
        "AWS_SECRET_ACCESS_KEY": "platform-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for listed in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=listed["Key"])
    client.delete_bucket(Bucket=BUCKET)


def put(client, name: str, body: bytes) -> None:
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/orders/{name}", Body=body)


def tick(sensor: dg.SensorDefinition, zone: dict, instance: dg.DagsterInstance, cursor: str | None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=zone) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def requested_ranges(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests or []
    ]


def figures(result: dg.ExecuteInProcessResult) -> dict[str, tuple]:
    """Each day's rows read, loaded and dead-lettered, as its materialisation says."""
    return {
        event.partition: tuple(
            event.metadata[name].value
            for name in ("rows_read", "rows_loaded", "rows_dead_lettered")
        )
        for event in (e.materialization for e in result.get_asset_materialization_events())
    }


def test_a_bucket_is_loaded_end_to_end_by_the_landing_sensor(
    bucket, resources: dict, landing_dir: Path, instance: dg.DagsterInstance
) -> None:
    sensor, asset = build_landing_sensor(ORDERS), build_dataset_asset(ORDERS)
    zone = {**resources, "landing": LandingZone(directory=ZONE_URL)}
    files = sorted((landing_dir / "orders").iterdir())
    for path in files:
        put(bucket, path.name, path.read_bytes())
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    put(bucket, f"orders_{tomorrow}.csv", b"order_id\n1\n")

    first = tick(sensor, zone, instance, None)
    assert requested_ranges(first) == [(DAYS[0], DAYS[-1])]  # whole once listed: no settling
    landed = [e.partition for e in first.asset_events if isinstance(e, dg.AssetMaterialization)]
    assert landed == DAYS
    (waiting,) = [e for e in first.asset_events if isinstance(e, dg.AssetObservation)]
    assert (
        f"{tomorrow} is not a partition (yet)"
        in waiting.metadata["why"].value[f"orders_{tomorrow}.csv"]
    )
    seen = stored_state(
        resources["warehouse"], sensor.name, json.loads(first.cursor), platform_logger()
    )["seen"]
    assert seen[files[0].name]["etag"] and seen[files[0].name]["size"] == files[0].stat().st_size

    from_bucket = dg.materialize(
        [asset],
        tags=first.run_requests[0].tags,
        resources=zone,
        instance=instance,
    )
    warehouse = resources["warehouse"]
    stored = table_checksum(warehouse, "sales", "orders")
    letters = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT partition_key, source_ref, error_message FROM platform.dead_letter_records"
            " ORDER BY 1, 2"
        ),
    )
    first_day = from_bucket.get_asset_materialization_events()[0].materialization.metadata
    assert first_day["source_files"].value == [
        {"path": f"{ZONE_URL}/orders/{files[0].name}", "bytes": files[0].stat().st_size}
    ]

    from_directory = dg.materialize(  # the same files from a local directory: the same result
        [asset], tags=first.run_requests[0].tags, resources=resources, instance=instance
    )
    assert figures(from_directory) == figures(from_bucket)
    assert all(loaded > 0 and lettered > 0 for _, loaded, lettered in figures(from_bucket).values())
    assert table_checksum(warehouse, "sales", "orders") == stored
    assert letters and {letter[1].split(":")[0] for letter in letters} <= {f.name for f in files}

    assert requested_ranges(tick(sensor, zone, instance, first.cursor)) == []  # nothing changed
    put(bucket, files[1].name, files[1].read_bytes())  # the same bytes again: the same ETag
    assert requested_ranges(tick(sensor, zone, instance, first.cursor)) == []
    body = files[1].read_bytes()  # a corrected delivery of the middle day, of the same size
    corrected = body[:-2] + (b"7" if body[-2:-1] != b"7" else b"8") + body[-1:]
    put(bucket, files[1].name, corrected)
    assert requested_ranges(tick(sensor, zone, instance, first.cursor)) == [(DAYS[1], DAYS[1])]


def test_objects_wait_for_their_marker_and_a_missing_day_names_the_bucket(
    bucket, resources: dict, landing_dir: Path, instance: dg.DagsterInstance
) -> None:
    sensor, asset = build_landing_sensor(VOUCHED), build_dataset_asset(VOUCHED)
    zone = {**resources, "landing": LandingZone(directory=ZONE_URL)}
    path = sorted((landing_dir / "orders").iterdir())[0]
    body = path.read_bytes()
    put(bucket, path.name, body)
    manifest = {"sha256": hashlib.sha256(body).hexdigest()}
    put(bucket, f"{path.name}.manifest.json", json.dumps(manifest).encode())

    waits = tick(sensor, zone, instance, None)
    assert requested_ranges(waits) == []
    assert f"its ready marker {path.name}.done has not arrived" in waits.skip_reason.skip_message
    put(bucket, f"{path.name}.done", b"")
    ready = tick(sensor, zone, instance, waits.cursor)
    assert requested_ranges(ready) == [(DAYS[0], DAYS[0])]

    loaded = dg.materialize([asset], partition_key=DAYS[0], resources=zone, instance=instance)
    ((checks,),) = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT completeness_checks FROM platform.ingestion_file_lines WHERE partition_key = %s"
        ),
        (DAYS[0],),
    )
    assert loaded.success and "manifest sha256" in checks and "ready marker" in checks
    stale = Path(tempfile.gettempdir()) / f"platform-landing-{_pid_of_a_gone_process()}-left"
    stale.mkdir()  # what a load killed while reading leaves behind

    missing = dg.materialize(
        [asset], partition_key=DAYS[1], resources=zone, instance=instance, raise_on_error=False
    )
    message = missing.failure_data_for_node("sales__orders").error.cause.message
    assert f"no landing file for {DAYS[1]} matches {ZONE_URL}/orders/orders_{DAYS[1]}" in message
    put(bucket, path.name, body + body.splitlines(keepends=True)[1])  # no longer as vouched
    changed = dg.materialize(
        [asset], partition_key=DAYS[0], resources=zone, instance=instance, raise_on_error=False
    )
    message = changed.failure_data_for_node("sales__orders").error.cause.message
    assert f"landing file {ZONE_URL}/orders/{path.name} does not match its manifest" in message
    assert not stale.exists()  # removed by the next load on the machine
    leftovers = list(Path(tempfile.gettempdir()).glob(f"platform-landing-{os.getpid()}-*"))
    assert leftovers == []  # each local copy is removed once read, or once its load failed


def test_the_sample_data_command_uploads_to_the_landing_url(
    bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def objects() -> dict[str, tuple[str, bytes]]:
        listed = bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        fetched = {o["Key"]: bucket.get_object(Bucket=BUCKET, Key=o["Key"]) for o in listed}
        return {key: (got["ETag"], got["Body"].read()) for key, got in fetched.items()}

    span = ["--start", "2026-11-01", "--end", "2026-11-02", "--no-customers"]
    sizes = ["--orders-per-day", "40", "--events-per-day", "7"]
    monkeypatch.setenv(settings.LANDING_URL_VAR, ZONE_URL)  # the default landing zone
    sample_data.main([*span, *sizes])
    sample_data.main([*span, *sizes, "--landing", str(tmp_path)])  # the same, in a directory
    uploaded = objects()
    written = {
        f"{PREFIX}/{path.relative_to(tmp_path)}": path.read_bytes()
        for path in tmp_path.rglob("*")
        if path.is_file()
    }
    assert len(written) == 4 and {key: body for key, (_, body) in uploaded.items()} == written

    sample_data.main([*span, "--orders-per-day", "90", "--landing", ZONE_URL])
    assert objects() == uploaded  # what exists is kept, as in a directory
    sample_data.main([*span, "--orders-per-day", "90", "--overwrite"])
    assert {key: body for key, (_, body) in objects().items() if "orders_" in key} != {
        key: body for key, (_, body) in uploaded.items() if "orders_" in key
    }


def _pid_of_a_gone_process() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_landing_url_must_name_an_s3_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LANDING_URL_VAR, "gs://elsewhere/zone")
    with pytest.raises(ValueError, match="PLATFORM_LANDING_URL must be an s3://bucket/prefix URL"):
        settings.landing_root()
    monkeypatch.setenv(settings.LANDING_URL_VAR, " ")
    assert settings.landing_root() == str(settings.landing_dir())  # blank: the local directory
