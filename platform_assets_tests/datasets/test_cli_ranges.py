"""A range of days from the shell: `dg launch --assets ... --partition-range A...B` runs it as one
run (the single-run backfill policy), with the same per-day accounting as the UI's runs."""

import os
import subprocess
import sys
from pathlib import Path

from psycopg import sql

from platform_assets.lib import settings
from platform_assets_tests.conftest import REPO_ROOT, SAMPLE_DAYS
from platform_assets_tests.helpers import fetch_all


def test_dg_launch_materialises_a_partition_range(clean_warehouse, landing_dir: Path) -> None:
    first, last = SAMPLE_DAYS[0].isoformat(), SAMPLE_DAYS[-1].isoformat()
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env[settings.LANDING_DIR_VAR] = str(landing_dir)
    launched = subprocess.run(
        [
            str(Path(sys.executable).with_name("dg")),
            "launch",
            "--assets",
            "key:sales/orders or key:sales/daily_order_metrics",
            "--partition-range",
            f"{first}...{last}",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]
    accounted = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT partition_key, count(DISTINCT run_id) FROM platform.ingestion_accounting"
            " GROUP BY 1 ORDER BY 1"
        ),
    )
    assert [key for key, _ in accounted] == [day.isoformat() for day in SAMPLE_DAYS]
    runs = fetch_all(
        clean_warehouse, sql.SQL("SELECT count(DISTINCT run_id) FROM platform.ingestion_accounting")
    )
    assert runs == [(1,)]  # the three days in one run
    metric_days = fetch_all(
        clean_warehouse,
        sql.SQL("SELECT DISTINCT metric_date::text FROM sales.daily_order_metrics ORDER BY 1"),
    )
    assert metric_days == [(day.isoformat(),) for day in SAMPLE_DAYS]
