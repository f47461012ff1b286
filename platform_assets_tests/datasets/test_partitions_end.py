"""A historical dataset declares where its partitions end (``partitions.end``): its asset has
exactly the days it covers, no freshness policy to flag it as stale, and no schedule; its last day
loads for real."""

from pathlib import Path

import dagster as dg
import pydantic
import pytest
from psycopg import sql

from platform_assets.defs.datasets.assets import build_dataset_asset
from platform_assets.lib.ingestion.spec import DatasetSpec
from platform_assets.lib.sources.landing_zone import LandingZone
from platform_assets_tests.datasets.readings import readings_spec
from platform_assets_tests.helpers import fetch_all

COLUMNS = [
    {"name": "reading_id", "type": "integer", "required": True},
    {"name": "taken_on", "type": "date", "required": True},
    {"name": "value", "type": "integer"},
]


def historical(**partitions: object) -> DatasetSpec:
    return readings_spec(
        COLUMNS,
        partitions={"start": "2013-01-01", **partitions},
        primary_key=["reading_id"],
        partition_column="taken_on",
    )


def test_the_asset_has_exactly_the_days_it_covers_and_goes_stale_never(
    tmp_path: Path, resources: dict
) -> None:
    asset = build_dataset_asset(historical(end="2014-01-01"))
    keys = asset.partitions_def.get_partition_keys()
    assert (len(keys), keys[0], keys[-1]) == (365, "2013-01-01", "2013-12-31")
    assert asset.specs_by_key[asset.key].freshness_policy is None
    ongoing = build_dataset_asset(historical())
    assert ongoing.specs_by_key[ongoing.key].freshness_policy is not None

    (tmp_path / "readings").mkdir()
    (tmp_path / "readings" / "readings_2013-12-31.csv").write_text(
        "reading_id,taken_on,value\n1,2013-12-31,7\n"
    )
    loaded = dg.materialize(
        [asset],
        partition_key="2013-12-31",
        resources={**resources, "landing": LandingZone(directory=str(tmp_path))},
    )
    assert loaded.success
    assert fetch_all(
        resources["warehouse"], sql.SQL("SELECT reading_id, taken_on::text FROM io_test.readings")
    ) == [(1, "2013-12-31")]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"end": "2013-01-01"}, "is not after partitions.start"),
        ({"end": "2012-06-01"}, "is not after partitions.start"),
    ],
)
def test_an_end_before_the_start_is_refused(changes: dict, error: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        historical(**changes)


def test_a_dataset_that_ends_has_no_schedule() -> None:
    with pytest.raises(pydantic.ValidationError, match="nothing to schedule"):
        readings_spec(
            COLUMNS,
            partitions={"start": "2013-01-01", "end": "2014-01-01"},
            primary_key=["reading_id"],
            partition_column="taken_on",
            schedule={"cron": "0 2 * * *"},
        )
