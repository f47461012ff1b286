"""Structured log lines: JSON in production, bound to the run, asset and partition."""

import json
from collections.abc import Iterator

import dagster as dg
import pytest
import structlog

from platform_assets.lib import settings
from platform_assets.lib.logging import run_logger
from platform_assets_tests.conftest import SAMPLE_DAYS
from platform_assets_tests.sales.test_pipeline import ORDERS


@pytest.fixture
def json_logs(monkeypatch) -> Iterator[None]:
    """Configure structlog afresh with ``PLATFORM_LOG_FORMAT=json``, and undo it afterwards."""
    monkeypatch.setenv(settings.LOG_FORMAT_VAR, "json")
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_json_lines_carry_run_asset_and_partition(json_logs, instance) -> None:
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2026-11-01"))
    def logged(context: dg.AssetExecutionContext) -> None:
        """Emits one structured line."""
        run_logger(context).info("something_happened", rows=3)

    result = dg.materialize([logged], partition_key="2026-11-02", instance=instance)
    lines = [
        json.loads(entry.user_message)
        for entry in instance.all_logs(result.run_id)
        if "something_happened" in entry.user_message
    ]
    assert lines == [
        {
            "event": "something_happened",
            "rows": 3,
            "level": "info",
            "run_id": result.run_id,
            "asset_key": "logged",
            "partition": "2026-11-02",
            "timestamp": lines[0]["timestamp"],
        }
    ]


def dataset_source_line(instance: dg.DagsterInstance, run_id: str) -> str:
    (line,) = [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if "dataset_source" in entry.user_message
    ]
    return line


def test_json_logs_through_a_real_dataset_materialisation(json_logs, resources, instance) -> None:
    result = dg.materialize(
        [ORDERS], partition_key=SAMPLE_DAYS[0].isoformat(), resources=resources, instance=instance
    )

    assert result.success
    line = json.loads(dataset_source_line(instance, result.run_id))
    (source_file,) = line["source_files"]  # data, not a repr of Dagster's metadata value
    assert source_file["path"].endswith(f"orders_{SAMPLE_DAYS[0].isoformat()}.csv")
    assert source_file["bytes"] > 0


def test_console_logs_carry_data_not_reprs(resources, instance) -> None:
    structlog.reset_defaults()
    result = dg.materialize(
        [ORDERS], partition_key=SAMPLE_DAYS[0].isoformat(), resources=resources, instance=instance
    )

    line = dataset_source_line(instance, result.run_id)
    assert result.success and "source_files=[{'path': " in line
    assert "MetadataValue" not in line


def test_an_error_no_retry_can_fix_is_not_retried_by_the_step(
    resources, instance, monkeypatch
) -> None:
    import platform_assets.defs.datasets.assets as dataset_assets

    def broken_logger(context):
        raise ValueError("a bug in the asset")

    monkeypatch.setattr(dataset_assets, "run_logger", broken_logger)

    result = dg.materialize(
        [ORDERS],
        partition_key=SAMPLE_DAYS[0].isoformat(),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    events = [event.event_type for event in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    failure = result.failure_data_for_node("sales__orders").error
    assert "a bug in the asset" in failure.to_string()
