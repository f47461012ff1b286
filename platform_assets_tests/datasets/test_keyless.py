"""Datasets without a primary key: a keyless one keeps every row, repeats included, and re-runs
idempotently; a dedupe key refuses repeats without being the table's key. Materialised for real,
checks and replay included."""

from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.defs.datasets.checks import build_dataset_checks
from platform_assets.defs.datasets.partitions import dataset_table_slice
from platform_assets.lib.dead_letters.replay_store import (
    Patch,
    ReplayKey,
    record_patches,
    replay_partition,
)
from platform_assets.lib.ingestion.replay import revalidate
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.ingestion.validation import PartitionWindow
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.helpers import fetch_all, table_checksum

DAY, NEXT_DAY = "2026-11-10", "2026-11-11"
HEADER = "reading_id,taken_on,sensor,value"


COLUMNS = [
    {"name": "reading_id", "type": "integer", "required": True},
    {"name": "taken_on", "type": "date", "required": True},
    {"name": "sensor", "type": "text", "required": True},
    {"name": "value", "type": "integer", "min": 0},
]


def keyed_readings(**keys: object) -> DatasetSpec:
    """Sensor readings, keyless unless ``keys`` declares a primary or dedupe key."""
    return readings_spec(
        COLUMNS,
        partition_column="taken_on",
        fail_dead_letter_ratio=1,  # a few rows a test, many of them bad on purpose
        **keys,
    )


def land(directory: Path, day: str, rows: list[str]) -> None:
    (directory / "readings").mkdir(parents=True, exist_ok=True)
    (directory / "readings" / f"readings_{day}.csv").write_text("\n".join([HEADER, *rows]) + "\n")


def load(spec: DatasetSpec, day: str, resources: dict, instance: dg.DagsterInstance):
    result = dg.materialize(
        [build_dataset_asset(spec), *build_dataset_checks(spec)],
        partition_key=day,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert result.success
    return result


def stored(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL("SELECT reading_id, sensor, value FROM io_test.readings ORDER BY 1, 2, 3"),
    )


def letters(warehouse: Warehouse) -> list[tuple]:
    return fetch_all(
        warehouse,
        sql.SQL(
            "SELECT partition_key, status, error_message FROM platform.dead_letter_records"
            " ORDER BY id"
        ),
    )


@pytest.fixture
def landing(tmp_path: Path, resources: dict) -> dict:
    return {**resources, "landing": LandingZone(directory=str(tmp_path))}


def test_a_keyless_dataset_keeps_repeats_and_reruns_idempotently(
    landing: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    spec = keyed_readings()
    rows = [f"1,{DAY},a,5", f"1,{DAY},a,5", f"2,{DAY},b,7", f"3,{DAY},c,-1"]
    land(tmp_path, DAY, rows)

    first = load(spec, DAY, landing, instance)
    before = table_checksum(landing["warehouse"], "io_test", "readings")
    second = load(spec, DAY, landing, instance)

    assert stored(landing["warehouse"]) == [(1, "a", 5), (1, "a", 5), (2, "b", 7)]
    assert table_checksum(landing["warehouse"], "io_test", "readings") == before
    evaluations = {e.check_name: e for e in second.get_asset_check_evaluations()}
    assert "keys_valid" not in evaluations  # no key: nothing to keep unique
    assert evaluations["rows_add_up"].passed
    assert [e.check_name for e in first.get_asset_check_evaluations()].count("rows_add_up") == 1
    constraints = fetch_all(
        landing["warehouse"],
        sql.SQL("SELECT count(*) FROM pg_constraint WHERE conrelid = 'io_test.readings'::regclass"),
    )
    assert constraints == [(0,)]
    assert letters(landing["warehouse"]) == [(DAY, "new", "value is below 0")]


def test_append_without_a_key_adds_each_run_rows_letters_and_figures(
    landing: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    spec = keyed_readings(write_mode="append")
    land(tmp_path, DAY, [f"1,{DAY},a,5", f"2,{DAY},b,-1"])

    load(spec, DAY, landing, instance)
    second = load(spec, DAY, landing, instance)

    warehouse = landing["warehouse"]
    assert stored(warehouse) == [(1, "a", 5), (1, "a", 5)]
    assert letters(warehouse) == [(DAY, "new", "value is below 0")] * 2
    figures = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT a.rows_read, a.rows_loaded, a.rows_dead_lettered, f.data_lines,"
            " f.lines_loaded, f.lines_dead_lettered FROM platform.ingestion_accounting a"
            " JOIN platform.ingestion_file_lines f USING (asset_key, partition_key)"
        ),
    )
    assert figures == [(4, 2, 2, 4, 2, 2)]  # the partition's totals over both runs
    rows_add_up = [e for e in second.get_asset_check_evaluations() if e.check_name == "rows_add_up"]
    assert [e.passed for e in rows_add_up] == [True]


def test_a_dedupe_key_refuses_repeats_without_being_the_table_key(
    landing: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    spec = keyed_readings(dedupe_key=["reading_id"])
    land(tmp_path, DAY, [f"1,{DAY},a,5", f"1,{DAY},b,6", f"2,{DAY},b,7"])
    land(tmp_path, NEXT_DAY, [f"2,{NEXT_DAY},b,7", f"3,{NEXT_DAY},c,8"])

    load(spec, DAY, landing, instance)
    result = load(spec, NEXT_DAY, landing, instance)

    warehouse = landing["warehouse"]
    assert stored(warehouse) == [(1, "a", 5), (2, "b", 7), (3, "c", 8)]
    assert letters(warehouse) == [
        (DAY, "new", "dedupe key ['reading_id'] repeats an earlier row of this load"),
        (NEXT_DAY, "new", f"dedupe key ['reading_id'] is already loaded in partition {DAY}"),
    ]
    keys_valid = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "keys_valid"
    )
    assert keys_valid.passed and keys_valid.metadata["unique_key"].value == ["reading_id"]
    indexes = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT indisprimary, strpos(pg_get_indexdef(indexrelid), '(reading_id)') > 0"
            " FROM pg_index WHERE indrelid = 'io_test.readings'::regclass"
        ),
    )
    assert not any(primary for primary, _ in indexes)  # not the table's key...
    assert [on_key for _, on_key in indexes].count(True) == 1  # ...but looked up by an index


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        ({}, None),
        ({"dedupe_key": ["reading_id"]}, "dedupe"),
        ({"primary_key": ["reading_id"]}, "primary"),
    ],
    ids=["keyless", "dedupe-key", "primary-key"],
)
def test_replay_follows_the_key(
    keys: dict, kind: str | None, landing: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """Three letters patched into rows: one repeating a stored key, two sharing a new one. A
    keyless dataset loads all three; a keyed one loads one of the pair, and the other two stay
    letters saying why. The accounting adds up either way."""
    spec = keyed_readings(**keys)
    rows = [f"1,{DAY},a,5", f"1,{DAY},z,-1", f"2,{DAY},b,-5", f"2,{DAY},c,-6"]
    land(tmp_path, DAY, rows)
    load(spec, DAY, landing, instance)
    warehouse = landing["warehouse"]
    queued = fetch_all(warehouse, sql.SQL("SELECT id, payload FROM platform.dead_letter_records"))
    fixes = [
        Patch(i, {**payload, "value": "5"}, note="sign", author="ana") for i, payload in queued
    ]
    with warehouse.bulk_connection() as conn:
        record_patches(conn, "io_test/readings", fixes, "replay-run")
        table_slice = dataset_table_slice(spec, [DAY])
        window = table_slice.partitions[0].window
        partition = PartitionWindow(DAY, window.start, window.end)
        outcome = replay_partition(
            conn,
            "io_test/readings",
            table_slice,
            ReplayKey(spec.primary_key, spec.dedupe_key),
            ["new", "replaying"],
            lambda records: revalidate(spec, records, partition, None),
            "replay-run",
        )

    loaded = stored(warehouse)
    accounting = fetch_all(
        warehouse,
        sql.SQL(
            "SELECT rows_read, rows_loaded, rows_dead_lettered FROM platform.ingestion_accounting"
        ),
    )
    if kind is None:
        assert loaded == [(1, "a", 5), (1, "z", 5), (2, "b", 5), (2, "c", 5)]
        assert (outcome.resolved, outcome.still_failing, accounting) == (3, 0, [(4, 4, 0)])
        return
    assert (outcome.resolved, outcome.still_failing, accounting) == (1, 2, [(4, 2, 2)])
    ((_, sensor, _),) = [row for row in loaded if row[0] == 2]
    outcomes = dict(
        fetch_all(
            warehouse,
            sql.SQL("SELECT payload->>'sensor', error_message FROM platform.dead_letter_records"),
        )
    )
    assert outcomes.pop("z").startswith(f"{kind} key ['reading_id'] is already loaded in ")
    other = "c" if sensor == "b" else "b"
    assert outcomes[other] == f"{kind} key ['reading_id'] repeats an earlier row of this load"
    status = fetch_all(
        warehouse,
        sql.SQL("SELECT status FROM platform.dead_letter_records WHERE payload->>'sensor' = %s"),
        (sensor,),
    )
    assert status == [("resolved",)]  # the letter resolved is the one whose row was loaded


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"write_mode": "upsert"}, "write_mode upsert needs a primary_key"),
        ({"primary_key": ["reading_id"], "dedupe_key": ["reading_id"]}, "declare one of them"),
        ({"dedupe_key": ["value"]}, "dedupe_key columns must be required: ['value']"),
        ({"primary_key": ["nope"]}, "primary_key names unknown columns ['nope']"),
    ],
    ids=["upsert-keyless", "both-keys", "optional-key-column", "unknown-column"],
)
def test_the_spec_refuses_keys_that_cannot_work(keys: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        keyed_readings(**keys)
