"""A dataset's spec changed in a way its table cannot absorb: an empty table (every row of the
first load refused) is simply created anew as declared; a table holding rows refuses the load,
naming the change and the migration to write. Materialised for real."""

from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.helpers import fetch_all

DAY = "2026-11-10"


def valued_readings(value: dict, primary_key: list[str]) -> DatasetSpec:
    """Readings whose ``value`` column is declared as ``value``, keyed by ``primary_key``."""
    columns = [
        {"name": "reading_id", "type": "integer", "required": True},
        {"name": "taken_on", "type": "date", "required": True},
        {"name": "sensor", "type": "text", "required": True},
        {"name": "value", **value},
    ]
    return readings_spec(
        columns, primary_key=primary_key, partition_column="taken_on", fail_dead_letter_ratio=1
    )


def load(spec: DatasetSpec, resources: dict, instance: dg.DagsterInstance):
    return dg.materialize(
        [build_dataset_asset(spec)],
        partition_key=DAY,
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def column_types(resources: dict) -> dict[str, str]:
    rows = fetch_all(
        resources["warehouse"],
        sql.SQL(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'io_test.readings'::regclass AND attnum > 0 AND NOT attisdropped"
        ),
    )
    return dict(rows)


@pytest.fixture
def landing(tmp_path: Path, resources: dict) -> dict:
    (tmp_path / "readings").mkdir()
    rows = [f"1,{DAY},a,5.125", f"2,{DAY},b,0.5"]  # decimals: an integer spec refuses them all
    (tmp_path / "readings" / f"readings_{DAY}.csv").write_text(
        "reading_id,taken_on,sensor,value\n" + "\n".join(rows) + "\n"
    )
    return {**resources, "landing": LandingZone(directory=str(tmp_path))}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            valued_readings({"type": "integer"}, ["reading_id"]),
            valued_readings({"type": "decimal", "precision": 8, "scale": 3}, ["reading_id"]),
        ),
        (
            valued_readings({"type": "integer"}, ["reading_id"]),
            valued_readings({"type": "decimal", "precision": 8, "scale": 3}, ["sensor"]),
        ),
    ],
    ids=["type", "type-and-key"],
)
def test_an_empty_table_is_created_anew_as_the_corrected_spec_declares(
    first: DatasetSpec,
    second: DatasetSpec,
    landing: dict,
    instance: dg.DagsterInstance,
) -> None:
    refused = load(first, landing, instance)
    assert refused.success  # every row a dead letter: the table exists, empty, value bigint
    assert column_types(landing)["value"] == "bigint"

    corrected = load(second, landing, instance)

    assert corrected.success
    assert column_types(landing)["value"] == "numeric(8,3)"
    stored = fetch_all(
        landing["warehouse"],
        sql.SQL("SELECT reading_id, value::text FROM io_test.readings ORDER BY 1"),
    )
    assert stored == [(1, "5.125"), (2, "0.500")]
    key = fetch_all(
        landing["warehouse"],
        sql.SQL(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'io_test.readings'::regclass"
            " AND i.indisprimary"
        ),
    )
    assert key == [(second.primary_key[0],)]


def test_a_table_holding_rows_refuses_the_change_naming_it(
    landing: dict, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    text_spec = valued_readings({"type": "text"}, ["reading_id"])
    assert load(text_spec, landing, instance).success  # two rows, value as text

    narrowed = load(
        valued_readings({"type": "decimal", "precision": 8, "scale": 3}, ["reading_id"]),
        landing,
        instance,
    )

    assert not narrowed.success
    failure = next(e for e in narrowed.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "column 'value' is text in the table but numeric(8,3) is declared" in message
    assert "needs a migration" in message
    assert column_types(landing)["value"] == "text"  # nothing changed
    assert fetch_all(landing["warehouse"], sql.SQL("SELECT count(*) FROM io_test.readings")) == [
        (2,)
    ]


@pytest.mark.parametrize(
    "without_key",
    [{}, {"dedupe_key": ["reading_id"]}],
    ids=["key removed", "key turned into a dedupe key"],
)
def test_a_key_removed_from_the_spec_is_refused_naming_it(
    landing: dict, instance: dg.DagsterInstance, without_key: dict
) -> None:
    """A loaded table keeps its primary key when the spec drops it: the load says so, instead of
    succeeding and failing later on a repeat with a raw constraint error."""
    assert load(valued_readings({"type": "text"}, ["reading_id"]), landing, instance).success
    columns = [
        {"name": "reading_id", "type": "integer", "required": True},
        {"name": "taken_on", "type": "date", "required": True},
        {"name": "sensor", "type": "text", "required": True},
        {"name": "value", "type": "text"},
    ]
    keyless = readings_spec(
        columns, partition_column="taken_on", fail_dead_letter_ratio=1, **without_key
    )

    refused = load(keyless, landing, instance)

    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "has primary key ['reading_id'] but none is declared" in message
    assert "the migrate job's dry run plans it" in message
    assert fetch_all(landing["warehouse"], sql.SQL("SELECT count(*) FROM io_test.readings")) == [
        (2,)
    ]
