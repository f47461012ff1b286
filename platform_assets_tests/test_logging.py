"""Structured log lines: JSON in production, bound to the run, asset and partition."""

import json
from collections.abc import Iterator

import dagster as dg
import pytest
import structlog

from platform_assets.lib import settings
from platform_assets.lib.logging import run_logger


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
