"""The sensor-readings dataset the dataset tests declare for themselves: table ``io_test.readings``
(a schema the ``clean_warehouse`` fixture drops), files ``readings/readings_{date}.csv``."""

from platform_assets.lib.ingestion.spec import DatasetSpec


def readings_spec(
    columns: list[dict], partitions: dict | None = None, **fields: object
) -> DatasetSpec:
    """A readings spec with ``columns``, daily ``partitions`` from 2026-01-01 unless given, and
    any other ``fields`` (keys, partition column, write mode…)."""
    return DatasetSpec.model_validate(
        {
            "name": "readings",
            "asset_key": ["io_test", "readings"],
            "description": "Readings of the day",
            "group": "io_test",
            "partitions": partitions or {"start": "2026-01-01"},
            "source": {
                "kind": "landing_files",
                "directory": "readings",
                "pattern": "readings_{date}.csv",
            },
            "columns": columns,
            **fields,
        }
    )
