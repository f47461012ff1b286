"""JSON Lines landing files (``format: jsonl``): one object per line, columns taken from dotted
paths, nested values kept as ``jsonb`` where a column is ``json``, numbers exact; a line that is
not an object is a dead letter of that line, and every line is accounted for, compressed or not.
Materialised for real."""

import gzip
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.datasets.test_spec_changes import DAY
from platform_assets_tests.helpers import fetch_all

LINES = [
    f'{{"id": 1, "day": "{DAY}", "user": {{"id": 7, "name": "Ann"}}, "amount": 12.50,'
    ' "tags": ["a", "b"]}',
    f'{{"id": 2, "day": "{DAY}", "user": {{"id": 8}}, "amount": 1e3}}',  # no name: missing
    "not json",
    "[1, 2]",
    "",
    f'{{"id": 6, "day": "{DAY}", "user": {{"id": "x"}}, "amount": 1}}',  # no integer
    f'{{"id": 7, "day": "{DAY}", "user": {{"id": 9, "name": "Bo"}}, "amount": 2,'
    ' "tags": {"k": 1.10}, "extra": true}',
]


def json_lines(suffix: str = "") -> DatasetSpec:
    spec = readings_spec(
        [
            {"name": "id", "type": "integer", "required": True},
            {"name": "day", "type": "date", "required": True},
            {"name": "user_id", "type": "integer", "path": "user.id"},
            {"name": "user_name", "type": "text", "path": "user.name"},
            {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
            {"name": "tags", "type": "json"},
        ],
        primary_key=["id"],
        partition_column="day",
        fail_dead_letter_ratio=1,
    )
    source = {"format": "jsonl", "pattern": f"readings_{{date}}.jsonl{suffix}"}
    return spec.model_copy(update={"source": spec.source.model_copy(update=source)})


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_json_lines_load_every_line_accounted_for(
    tmp_path: Path, resources: dict, suffix: str
) -> None:
    content = ("\n".join(LINES) + "\n").encode()
    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / f"readings_{DAY}.jsonl{suffix}").write_bytes(
        gzip.compress(content) if suffix else content
    )

    result = dg.materialize(
        [build_dataset_asset(json_lines(suffix))],
        partition_key=DAY,
        resources={**resources, "landing": LandingZone(directory=str(tmp_path))},
    )

    assert result.success
    warehouse = resources["warehouse"]
    assert fetch_all(
        warehouse,
        sql.SQL(
            "SELECT id, user_id, user_name, amount, tags::text FROM io_test.readings ORDER BY 1"
        ),
    ) == [
        (1, 7, "Ann", Decimal("12.50"), '["a", "b"]'),
        (2, 8, None, Decimal("1000.00"), None),
        (7, 9, "Bo", Decimal("2.00"), '{"k": 1.10}'),  # jsonb keeps the number as written
    ]
    letters = fetch_all(
        warehouse,
        sql.SQL("SELECT source_ref, error_message FROM platform.dead_letter_records ORDER BY 1"),
    )
    name = f"readings_{DAY}.jsonl{suffix}"
    assert [ref for ref, _ in letters] == [f"{name}:{n}" for n in (3, 4, 5, 6)]
    messages = dict(letters)
    assert "not JSON" in messages[f"{name}:3"]
    assert "a JSON list, not an object" in messages[f"{name}:4"]
    assert "the line is empty" in messages[f"{name}:5"]
    assert "user_id" in messages[f"{name}:6"]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_read"].value == len(LINES)
