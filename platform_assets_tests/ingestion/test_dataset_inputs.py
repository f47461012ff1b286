"""The orders dataset against bad and changing landing files, materialised for real."""

import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.samples.sample_orders import ORDER_COLUMNS, orders_file_name, write_day
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.helpers import fetch_all, table_checksum
from platform_assets_tests.sales.test_pipeline import ORDERS

DAY = date(2026, 11, 10)
KEY = DAY.isoformat()


@pytest.fixture
def landing(tmp_path: Path, resources: dict) -> tuple[Path, dict]:
    """A landing zone of this test's own, with one good day, and resources pointing at it."""
    write_day(tmp_path / "orders", DAY, orders=300, seed=5, malformed_share=0.03)
    return tmp_path / "orders", {**resources, "landing": LandingZone(directory=str(tmp_path))}


def materialize(resources: dict, instance: dg.DagsterInstance, assets: list | None = None):
    return dg.materialize(
        assets or [ORDERS],
        partition_key=KEY,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def state(warehouse: Warehouse) -> tuple:
    """Everything a partition write touches: its rows, dead letters and accounting."""
    return (
        table_checksum(warehouse, "sales", "orders"),
        table_checksum(warehouse, "platform", "dead_letter_records"),
        table_checksum(warehouse, "platform", "ingestion_accounting"),
    )


def figures(result: dg.ExecuteInProcessResult) -> tuple[int, int, int]:
    metadata = result.asset_materializations_for_node("sales__orders")[0].metadata
    return tuple(metadata[k].value for k in ("rows_read", "rows_loaded", "rows_dead_lettered"))


def test_header_only_file_empties_the_partition(landing, instance) -> None:
    directory, resources = landing
    assert materialize(resources, instance).success
    (directory / orders_file_name(DAY)).write_text(",".join(ORDER_COLUMNS) + "\n")

    result = materialize(resources, instance)

    assert result.success and figures(result) == (0, 0, 0)
    assert fetch_all(resources["warehouse"], sql.SQL("SELECT count(*) FROM sales.orders")) == [(0,)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (
            ",".join(ORDER_COLUMNS[:-1]).encode() + b"\n1,2\n",
            "lacks the declared column(s) ['discount']",
        ),
        (",".join([*ORDER_COLUMNS, "note"]).encode() + b"\n", "undeclared column(s) ['note']"),
    ],
    ids=["empty", "missing-column", "extra-column"],
)
def test_unusable_file_fails_clearly_and_keeps_the_partition(
    landing, instance, content: bytes, message: str
) -> None:
    directory, resources = landing
    assert materialize(resources, instance).success
    before = state(resources["warehouse"])
    (directory / orders_file_name(DAY)).write_bytes(content)

    result = materialize(resources, instance)

    assert not result.success
    assert message in result.failure_data_for_node("sales__orders").error.message
    assert state(resources["warehouse"]) == before


def test_a_changed_file_is_picked_up_by_a_rerun(landing, instance) -> None:
    directory, resources = landing
    first = materialize(resources, instance)
    path = directory / orders_file_name(DAY)
    lines = path.read_text().splitlines()
    extra = lines[1].split(",")
    extra[0] = "999999999"
    path.write_text("\n".join([*lines, ",".join(extra)]) + "\n")

    second = materialize(resources, instance)

    read, loaded, dead = figures(first)
    assert figures(second) == (read + 1, loaded + 1, dead)
    rows = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT count(*) FROM sales.orders WHERE order_id = 999999999"),
    )
    assert rows == [(1,)]


def test_every_file_of_the_day_is_read_and_keys_repeat_across_files(landing, instance) -> None:
    directory, resources = landing
    lines = (directory / orders_file_name(DAY)).read_text().splitlines()
    second = directory / f"orders_{KEY}_late.csv"
    second.write_text("\n".join([lines[0], lines[1]]) + "\n")  # repeats the first order

    result = materialize(resources, instance)

    read, loaded, dead = figures(result)
    assert read == len(lines) == loaded + dead  # both files' data lines
    repeat = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT source_ref, error_class FROM platform.dead_letter_records WHERE source_ref = %s"
        ),
        (f"{second.name}:2",),
    )
    assert repeat == [(f"{second.name}:2", "DuplicateKey")]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import dagster as dg
    import platform_assets.lib.ingestion.pipeline as pipeline
    from platform_assets.lib.sources.landing_zone import LandingZone
    from platform_assets.lib.io_manager.io_manager import PostgresIOManager
    from platform_assets.lib.warehouse.resource import Warehouse
    from platform_assets_tests.sales.test_pipeline import ORDERS

    read_csv = pipeline.stream_csv

    def dies_after_three_chunks(path, declared, extra_columns, **options):
        chunks = read_csv(path, declared, extra_columns, block_bytes=4096, **options)
        for number, batch in enumerate(chunks):
            if number == 3:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback from here
            yield batch

    pipeline.stream_csv = dies_after_three_chunks
    warehouse = Warehouse(database_url=sys.argv[2] or None)
    dg.materialize(
        [ORDERS],
        partition_key=sys.argv[1],
        resources={
            "warehouse": warehouse,
            "io_manager": PostgresIOManager(warehouse=warehouse),
            "landing": LandingZone(directory=sys.argv[3]),
        },
    )
    """
)


def test_a_process_killed_between_chunks_leaves_nothing_half_written(
    landing, instance, tmp_path: Path
) -> None:
    directory, resources = landing
    warehouse: Warehouse = resources["warehouse"]
    assert materialize(resources, instance).success
    before = state(warehouse)
    write_day(directory, DAY, orders=3000, seed=6, malformed_share=0.03)  # a new, larger file

    killed = subprocess.run(
        [sys.executable, "-c", KILLER, KEY, warehouse.database_url or "", str(directory.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )

    assert killed.returncode == -9, killed.stderr
    assert state(warehouse) == before  # no partial partition, no orphan dead letters
    result = materialize(resources, instance)  # and nothing is left locked
    assert result.success and figures(result)[0] > 2000


def parquet_readings(columns: list[dict]) -> DatasetSpec:
    """Meter readings delivered as Parquet, with ``columns``, keyed by meter and time."""
    return DatasetSpec.model_validate(
        {
            "name": "readings",
            "asset_key": ["io_test", "readings"],
            "description": "Meter readings delivered as Parquet.",
            "group": "test",
            "partitions": {"start": "2026-01-01"},
            "source": {
                "kind": "landing_files",
                "directory": "readings",
                "pattern": "readings_{date}.parquet",
                "format": "parquet",
            },
            "columns": [
                {"name": "meter", "type": "integer", "required": True},
                {"name": "read_at", "type": "timestamptz", "required": True},
                *columns,
            ],
            "primary_key": ["meter", "read_at"],
            "partition_column": "read_at",
        }
    )


def test_a_parquet_dataset_is_typed_from_its_declared_columns(
    resources, instance, tmp_path
) -> None:
    spec = parquet_readings(
        [{"name": "kwh", "type": "decimal", "precision": 8, "scale": 3, "min": 0}]
    )
    (tmp_path / "readings").mkdir()
    pq.write_table(
        pa.table(
            {
                "meter": pa.array([1, 2, 3], pa.int64()),
                "read_at": pa.array(
                    ["2026-11-10T01:00:00Z", "2026-11-10T02:00:00Z", "2026-11-11T00:00:00Z"]
                ).cast(pa.timestamp("us", tz="UTC")),
                "kwh": pa.array(["1.5", "-2", "3"]),
            }
        ),
        tmp_path / "readings" / f"readings_{KEY}.parquet",
    )
    asset = build_dataset_asset(spec)

    result = dg.materialize(
        [asset],
        partition_key=KEY,
        instance=instance,
        resources={**resources, "landing": LandingZone(directory=str(tmp_path))},
    )

    assert result.success
    metadata = result.asset_materializations_for_node("io_test__readings")[0].metadata
    assert (metadata["rows_read"].value, metadata["rows_loaded"].value) == (3, 1)
    rows = fetch_all(
        resources["warehouse"], sql.SQL("SELECT meter, kwh::text FROM io_test.readings")
    )
    assert rows == [(1, "1.500")]
    reasons = fetch_all(
        resources["warehouse"],
        sql.SQL("SELECT source_ref, error_message FROM platform.dead_letter_records ORDER BY 1"),
    )
    assert reasons == [
        (f"readings_{KEY}.parquet:row 2", "kwh is below 0"),
        (f"readings_{KEY}.parquet:row 3", f"read_at is not in partition {KEY}"),
    ]


def test_a_ten_megabyte_field_becomes_a_dead_letter_with_its_value(landing, instance) -> None:
    directory, resources = landing
    path = directory / orders_file_name(DAY)
    lines = path.read_text().splitlines()
    huge = lines[1].split(",")
    huge[4] = "x" * 10_000_000  # status: not one of the declared values
    path.write_text("\n".join([lines[0], ",".join(huge), *lines[2:]]) + "\n")

    result = materialize(resources, instance)

    assert result.success
    read, loaded, dead = figures(result)
    assert read == len(lines) - 1 == loaded + dead
    stored = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT length(payload ->> 'status'), error_message FROM platform.dead_letter_records"
            " WHERE source_ref = %s"
        ),
        (f"{path.name}:2",),
    )
    assert stored == [
        (
            10_000_000,
            "status is not one of "
            "['placed', 'paid', 'shipped', 'delivered', 'cancelled', 'returned']",
        )
    ]


def test_a_file_cut_mid_row_keeps_its_last_row_as_a_dead_letter(landing, instance) -> None:
    """The delivery stopped in the middle of its last row: every other row loads, the cut row
    is a dead letter saying why, and nothing loads with a changed value."""
    directory, resources = landing
    path = directory / orders_file_name(DAY)
    content = path.read_bytes()
    last_start = content.rstrip(b"\n").rfind(b"\n") + 1
    cut = content[: last_start + (len(content) - last_start) // 2]  # half of the last row
    path.write_bytes(cut)

    result = materialize(resources, instance)

    assert result.success
    read, loaded, dead = figures(result)
    assert read == cut.count(b"\n") == loaded + dead  # the header's break counts the cut line
    stored = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT source_ref, stage, error_class, payload ->> 'line'"
            " FROM platform.dead_letter_records WHERE error_class = 'PossiblyTruncated'"
        ),
    )
    assert stored == [
        (f"{path.name}:{read + 1}", "parse", "PossiblyTruncated", cut[last_start:].decode())
    ]


def test_a_parquet_value_that_cannot_be_read_costs_its_row_alone(
    resources, instance, tmp_path
) -> None:
    """One label of 300 is not UTF-8, and the kWh come as decimal(20,6): 35.920000 fits the
    declared numeric(12,2) by value and loads, 35.925000 does not and is a dead letter. A column
    Arrow cannot render as text at all fails the file, naming it, the column and both types."""
    spec = parquet_readings(
        [
            {"name": "label", "type": "text"},
            {"name": "kwh", "type": "decimal", "precision": 12, "scale": 2},
        ]
    )
    (tmp_path / "readings").mkdir()
    path = tmp_path / "readings" / f"readings_{KEY}.parquet"
    labels = [f"meter {n}".encode() for n in range(300)]
    labels[41] = b"caf\xe9"
    kwh = ["35.920000"] * 300
    kwh[7] = "35.925000"
    times = [f"2026-11-10T{n // 60 % 24:02}:{n % 60:02}:00Z" for n in range(300)]
    pq.write_table(
        pa.table(
            {
                "meter": pa.array(range(300), pa.int64()),
                "read_at": pa.array(times).cast(pa.timestamp("us", tz="UTC")),
                "label": pa.array(labels, pa.binary()),
                "kwh": pa.array(kwh).cast(pa.decimal128(20, 6)),
            }
        ),
        path,
    )
    asset = build_dataset_asset(spec)
    resources = {**resources, "landing": LandingZone(directory=str(tmp_path))}

    result = dg.materialize([asset], partition_key=KEY, instance=instance, resources=resources)

    metadata = result.asset_materializations_for_node("io_test__readings")[0].metadata
    assert (metadata["rows_read"].value, metadata["rows_loaded"].value) == (300, 298)
    warehouse = resources["warehouse"]
    loaded = fetch_all(warehouse, sql.SQL("SELECT DISTINCT kwh::text FROM io_test.readings"))
    assert loaded == [("35.92",)]
    letters = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT source_ref, error_class, payload ->> 'label', error_detail -> 'raw_base64'"
            " FROM platform.dead_letter_records ORDER BY 1"
        ),
    )
    assert letters == [
        (f"{path.name}:row 42", "InvalidEncoding", "caf\\xe9", {"label": "Y2Fm6Q=="}),
        (f"{path.name}:row 8", "ValidationError", "meter 7", None),
    ]

    nested = pa.table(
        {
            "meter": pa.array([1], pa.int64()),
            "read_at": pa.array(["2026-11-10T01:00:00Z"]).cast(pa.timestamp("us", tz="UTC")),
            "label": pa.array([["a", "b"]], pa.list_(pa.string())),
            "kwh": pa.array(["1.00"]).cast(pa.decimal128(20, 6)),
        }
    )
    pq.write_table(nested, path)
    refused = dg.materialize(
        [asset], partition_key=KEY, instance=instance, resources=resources, raise_on_error=False
    )
    message = refused.failure_data_for_node("io_test__readings").error.cause.message
    assert f"{path}: column label is list<element: string>" in message
    assert "cannot be read as the declared text" in message
