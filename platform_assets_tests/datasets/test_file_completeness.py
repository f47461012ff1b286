"""Complete files only: a dataset declaring a ready marker and a manifest per file, through its
landing sensor and real materialisations. A file waits for its marker; a file whose checksum or
row count differs from its manifest loads nothing; a file that matches loads, and what vouched
for it is kept in the accounting."""

import hashlib
import json
from datetime import date
from pathlib import Path

import dagster as dg
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.sensors import build_landing_sensor
from platform_assets.defs.datasets.specs import SPECS_BY_NAME
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.helpers import fetch_all

DAY = date(2026, 11, 12)
ORDERS = SPECS_BY_NAME["orders"]
VOUCHED = ORDERS.model_copy(
    update={
        "source": ORDERS.source.model_copy(
            update={"ready_marker": "{file}.done", "manifest": "{file}.manifest.json"}
        )
    }
)
ASSET = build_dataset_asset(VOUCHED)
SENSOR = build_landing_sensor(VOUCHED)


def test_files_wait_for_their_marker_and_load_only_as_their_manifest_says(
    resources: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    path = write_day(tmp_path / "orders", DAY, orders=200, seed=3, malformed_share=0.02)
    marker = path.with_name(path.name + ".done")
    manifest = path.with_name(path.name + ".manifest.json")
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}
    warehouse = resources["warehouse"]

    def tick(cursor: str | None) -> dg.SensorResult:
        zone = {"landing": resources["landing"], "warehouse": warehouse}
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=zone) as context:
            return SENSOR(context)

    def load() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [ASSET],
            partition_key=DAY.isoformat(),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    def failure(result: dg.ExecuteInProcessResult) -> str:
        assert not result.success
        return result.failure_data_for_node("sales__orders").error.cause.message

    def stored_rows() -> list[tuple]:
        if not fetch_all(warehouse, sql.SQL("SELECT to_regclass('sales.orders')"))[0][0]:
            return []
        return fetch_all(warehouse, sql.SQL("SELECT count(*) FROM sales.orders"))

    waiting = tick(tick(None).cursor)
    assert not waiting.run_requests
    assert f"{path.name} waits: its ready marker {marker.name} has not arrived" in (
        waiting.skip_reason.skip_message
    )
    assert "is not ready to load" in failure(load()) and stored_rows() == []

    marker.touch()
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    records = path.read_bytes().count(b"\n") - 1  # one record a line in the sample files
    manifest.write_text(json.dumps({"sha256": "0" * 64, "rows": records}))
    assert "does not match its manifest" in failure(load()) and stored_rows() == []
    manifest.write_text(json.dumps({"sha256": sha256, "rows": records - 1}))
    assert f"holds {records} records, its manifest says {records - 1}" in failure(load())
    assert stored_rows() == []

    manifest.write_text(json.dumps({"sha256": sha256, "rows": records}))
    ready = tick(tick(waiting.cursor).cursor)
    assert [r.tags["dagster/asset_partition_range_start"] for r in ready.run_requests] == [
        DAY.isoformat()
    ]
    assert load().success
    checks = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_file, completeness_checks, data_lines, lines_loaded"
            " + lines_dead_lettered FROM platform.ingestion_file_lines"
        ),
    )
    assert checks == [
        (
            path.name,
            f"ready marker {marker.name}; manifest sha256; manifest rows {records}",
            records,
            records,
        )
    ]
