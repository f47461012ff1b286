"""The UI in a real browser: Debian's headless Chromium, driven by Playwright, on the README's
`dg dev`. Open the asset, dismiss the first-visit dialog, launch one partition from the UI's
*Materialize…* dialog, and see each check's execution on that day pass; the rows are in Postgres.

Screenshots are kept as test artefacts under ``$PLATFORM_TEST_ARTIFACTS`` (default
``./test-artifacts``); two of them illustrate docs/operations.md.
"""

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from psycopg import sql

from platform_assets.lib.dagster_dev.client import DagsterDevClient
from platform_assets.lib.dagster_dev.process import wait_for
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.test_dagster_dev import dagster_dev

DAY = datetime.now(UTC).date() - timedelta(days=4)
CHROMIUM = "chromium-headless-shell"  # Debian's package of the same name (installed by .ci/run)
CHECKS = ("rows_add_up", "dead_letter_ratio", "keys_valid", "row_volume")


@pytest.fixture
def artifacts() -> Path:
    directory = Path(os.environ.get("PLATFORM_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which(CHROMIUM)
    assert executable, f"{CHROMIUM} is not installed: .ci/run installs it with apt-get"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def dismiss_first_visit_dialog(page: Page) -> None:
    """The community dialog shows on a first visit (until `.nux/` records it); skip it."""
    dialog = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    skip = dialog.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        return  # dismissed on an earlier visit
    skip.click()
    expect(dialog).to_be_hidden()


def launch_partition_from_the_ui(page: Page, day: str) -> None:
    """*Materialize…*, the day typed into the partition selection, then *Launch*."""
    page.get_by_role("button", name="Materialize…").click()
    launch_dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    selection = launch_dialog.locator("input[type=text]").first
    selection.fill(day)
    selection.press("Enter")
    expect(launch_dialog).to_contain_text("1 partition")
    launch_dialog.get_by_role("button", name="Launch").or_(
        launch_dialog.locator("button", has_text="Launch")
    ).first.click()


def test_a_partition_launched_from_the_ui_lands_with_its_checks_passing(
    clean_warehouse: Warehouse, tmp_path: Path, browser: Browser, artifacts: Path
) -> None:
    landing_dir = tmp_path / "landing"
    with dagster_dev(landing_dir, tmp_path / "dg-dev.log") as client:
        for sensor in ("orders_landing_files", "platform_automation"):
            client.stop_sensor(sensor)  # only what the browser launches runs
        write_day(landing_dir / "orders", DAY, orders=300, seed=3, malformed_share=0.01)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{client.port}/assets/sales/orders", wait_until="networkidle")
        dismiss_first_visit_dialog(page)
        expect(page.get_by_text("ISO 4217 code of every amount on the order")).to_be_visible()
        page.screenshot(path=str(artifacts / "asset-overview.png"))

        launch_partition_from_the_ui(page, DAY.isoformat())
        run = wait_for_partition_run(client, DAY.isoformat())
        assert run == "SUCCESS"

        page.get_by_text("Checks", exact=True).first.click()
        for name in CHECKS:  # each check's execution on the launched day: Passed
            page.get_by_text(name, exact=True).first.click()
            page.get_by_text("Execution history", exact=True).first.click()
            execution = page.get_by_role("row").filter(has_text=DAY.isoformat())
            expect(execution.first).to_contain_text("Passed", timeout=30_000)
        page.screenshot(path=str(artifacts / "asset-checks.png"))

    stored = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT (SELECT count(*) FROM sales.orders WHERE order_date = %s),"
            " (SELECT rows_loaded FROM platform.ingestion_accounting WHERE partition_key = %s)"
        ),
        (DAY, DAY.isoformat()),
    )
    assert stored[0][0] == stored[0][1] > 0


def wait_for_partition_run(client: DagsterDevClient, day: str) -> str:
    """The final status of the run the UI launched for ``day``."""

    def launched() -> str | None:
        runs = client.runs_tagged("dagster/partition", day)
        return runs[0].run_id if runs else None

    return client.wait_for_run(wait_for(launched, 120, f"a run for {day}"), 300)
