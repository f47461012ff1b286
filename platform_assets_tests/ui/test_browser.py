"""The UI in a real browser: Debian's headless Chromium, driven by Playwright, on the README's
`dg dev`. Open the asset (the column descriptions and tags of its spec), dismiss the first-visit
dialog, launch a day from the UI's *Materialize…* dialog before its file has landed: the run fails
and the checks roll up to *Failed*, with that day alone in *Execution failed*. Once the file lands,
launch it again: every check rolls up to *Succeeded*, each check's execution on that day passed,
and the rows are in Postgres. Two more days then load in one range run, and each day's partition
page shows that day's own figures. Left to run itself on three days of orders and of events, the
platform shows each dataset's dead letters with their counts, every landed day on the landing
assets' partitions pages, and tomorrow's file as waiting, with why.

Screenshots are kept as test artefacts under ``$PLATFORM_TEST_ARTIFACTS`` (default
``./test-artifacts``); they illustrate docs/operations.md and
docs/tour.md.
"""

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRunStatus
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from psycopg import sql

from platform_assets.lib.dagster_dev.client import DagsterDevClient
from platform_assets.lib.dagster_dev.process import wait_for
from platform_assets.lib.samples.sample_events import write_events_day
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT
from platform_assets_tests.helpers import fetch_all
from platform_assets_tests.test_dagster_dev import dagster_dev

DAY = datetime.now(UTC).date() - timedelta(days=4)
CHROMIUM = "chromium-headless-shell"  # Debian's package of the same name (installed by .ci/run)
CHECKS = ("rows_add_up", "dead_letter_ratio", "keys_valid", "row_volume")
ALL_CHECKS = (*CHECKS, "column_schema_change")


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


def expect_a_range_to_launch_as_one_backfill_run(page: Page, first: str, last: str) -> None:
    """*Materialize…* with a range of days offers one thing, as docs/operations.md says: a
    backfill of one run (the assets' ``BackfillPolicy``), with no *Launch as… Single run* choice
    (Dagster 1.13 does not offer it for assets). Cancelled, nothing launched."""
    page.get_by_role("button", name="Materialize…").click()
    launch_dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    selection = launch_dialog.locator("input[type=text]").first
    selection.fill(f"[{first}...{last}]")
    selection.press("Enter")
    expect(launch_dialog).to_contain_text("Backfills all partitions in a single run.")
    expect(launch_dialog.get_by_role("button", name="Launch backfill")).to_be_visible()
    expect(launch_dialog.get_by_text("Launch as…")).to_have_count(0)
    launch_dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(launch_dialog).to_be_hidden()


def expect_checks_roll_up(page: Page, status: str) -> None:
    """Every check of the *Checks* tab's list says ``status`` (its roll-up over the partitions)."""
    page.get_by_text("Checks", exact=True).first.click()
    for name in ALL_CHECKS:
        expect(check_in_list(page, name, status)).to_be_visible(timeout=30_000)


def check_in_list(page: Page, name: str, status: str | None = None) -> Locator:
    """The *Checks* list's entry for ``name`` (saying ``status``, when given).

    The entries are not links: the entry is the innermost element holding both texts.
    """
    entry = page.locator("div").filter(has=page.get_by_text(name, exact=True))
    entry = entry.filter(
        has=page.get_by_text(status or re.compile("^(Failed|Succeeded)$"), exact=True)
    )
    return entry.last


def expect_partition_tally(page: Page, check: str, passed: int, execution_failed: int) -> None:
    """The check's *Partitions* tab counts ``passed`` and ``execution_failed`` partitions."""
    check_in_list(page, check).click()
    page.get_by_text("Partitions", exact=True).last.click()
    expect(page.get_by_text(f"Passed ({passed})")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(f"Execution Failed ({execution_failed})")).to_be_visible()


def test_a_day_launched_from_the_ui_rolls_its_checks_up_truthfully(
    clean_warehouse: Warehouse,
    tmp_path: Path,
    instance_database_url: str,
    browser: Browser,
    artifacts: Path,
) -> None:
    landing_dir, day = tmp_path / "landing", DAY.isoformat()
    with dagster_dev(landing_dir, tmp_path / "dg-dev.log", instance_database_url) as client:
        for sensor in ("orders_landing_files", "platform_automation"):
            client.stop_sensor(sensor)  # only what the browser launches runs
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        asset_page = f"http://127.0.0.1:{client.port}/assets/sales/orders"
        page.goto(asset_page, wait_until="networkidle")
        dismiss_first_visit_dialog(page)
        expect(page.get_by_text("ISO 4217 code of every amount on the order")).to_be_visible()
        expect(page.get_by_text("pii: linkable")).to_be_visible()  # the spec's column tags
        page.screenshot(path=str(artifacts / "asset-overview.png"))
        later = (DAY + timedelta(days=2)).isoformat()
        expect_a_range_to_launch_as_one_backfill_run(page, day, later)

        # Before the file lands: the run fails, and that day alone is marked.
        launch_partition_from_the_ui(page, day)
        failed_run = wait_for_partition_run(client, day, earlier=set())
        assert client.get_run_status(failed_run) == DagsterRunStatus.FAILURE
        expect_checks_roll_up(page, "Failed")
        expect_partition_tally(page, "rows_add_up", passed=0, execution_failed=1)
        page.screenshot(path=str(artifacts / "asset-checks-day-without-files.png"))

        # The file lands and the day is launched again: every check passes, the day included.
        write_day(landing_dir / "orders", DAY, orders=300, seed=3, malformed_share=0.01)
        page.goto(asset_page, wait_until="networkidle")
        launch_partition_from_the_ui(page, day)
        loaded_run = wait_for_partition_run(client, day, earlier={failed_run})
        assert client.get_run_status(loaded_run) == DagsterRunStatus.SUCCESS
        expect_checks_roll_up(page, "Succeeded")
        expect_partition_tally(page, "rows_add_up", passed=1, execution_failed=0)
        for name in CHECKS:  # each check's execution on the launched day: Passed
            check_in_list(page, name).click()
            page.get_by_text("Execution history", exact=True).first.click()
            execution = page.get_by_role("row").filter(has_text=day)
            expect(execution.first).to_contain_text("Passed", timeout=30_000)
        page.screenshot(path=str(artifacts / "asset-checks.png"))

        # Two more days in one run, as a backfill runs them: each day's page shows its own figures.
        days = [DAY + timedelta(days=1), DAY + timedelta(days=2)]
        for n, (other, orders) in enumerate(zip(days, (211, 377), strict=True)):
            write_day(landing_dir / "orders", other, orders=orders, seed=7 + n, malformed_share=0)
        ranged = client.submit_job_execution(
            "load_orders",
            tags={
                "dagster/asset_partition_range_start": days[0].isoformat(),
                "dagster/asset_partition_range_end": days[1].isoformat(),
            },
        )
        assert client.wait_for_run(ranged, 300) == DagsterRunStatus.SUCCESS
        read = dict(
            fetch_all(
                clean_warehouse,
                sql.SQL("SELECT partition_key, rows_read FROM platform.ingestion_accounting"),
            )
        )
        for shown, hidden in (days, days[::-1]):
            page.goto(f"{asset_page}?view=partitions&partition={shown}", wait_until="networkidle")
            figure = page.get_by_role("row").filter(has=page.get_by_text("rows_read", exact=True))
            expect(figure.first).to_contain_text(str(read[shown.isoformat()]), timeout=30_000)
            expect(figure.first).not_to_contain_text(str(read[hidden.isoformat()]))
        page.screenshot(path=str(artifacts / "asset-partition-of-a-range-run.png"))

    stored = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT (SELECT count(*) FROM sales.orders WHERE order_date = %s),"
            " (SELECT rows_loaded FROM platform.ingestion_accounting WHERE partition_key = %s)"
        ),
        (DAY, day),
    )
    assert stored[0][0] == stored[0][1] > 0


def wait_for_partition_run(client: DagsterDevClient, day: str, earlier: set[str]) -> str:
    """The id of the run the UI launched for ``day`` (none of ``earlier``), once it finished."""

    def launched() -> str | None:
        runs = [r for r in client.runs_tagged("dagster/partition", day) if r.run_id not in earlier]
        return runs[0].run_id if runs else None

    run_id = wait_for(launched, 120, f"a run for {day}")
    client.wait_for_run(run_id, 300)
    return run_id


def loaded_partitions(warehouse: Warehouse) -> dict[str, int]:
    """Partitions in the accounting per dataset (none before the first load made the table)."""
    if not fetch_all(warehouse, sql.SQL("SELECT to_regclass('platform.ingestion_accounting')"))[0][
        0
    ]:
        return {}
    query = "SELECT asset_key, count(*) FROM platform.ingestion_accounting GROUP BY 1"
    return dict(fetch_all(warehouse, sql.SQL(query)))


_OBSERVATION_RUNS = """
query ($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { ... on Asset { assetObservations(limit: 100) { runId } } }
}
"""


def observation_runs(client: DagsterDevClient, key: str) -> set[str]:
    """The runs that recorded an observation of the asset ``key`` (``a/b``)."""
    found = client.query(_OBSERVATION_RUNS, {"key": {"path": key.split("/")}})["assetOrError"]
    return {observation["runId"] for observation in found["assetObservations"]}


def observe_from_the_ui(page: Page, client: DagsterDevClient, key: str) -> None:
    """Click the asset page's *Observe* and wait for the run it launches to succeed."""
    before = observation_runs(client, key)
    page.get_by_role("button", name="Observe").click()
    run_id = wait_for(
        lambda: next(iter(observation_runs(client, key) - before), None),
        120,
        f"an observation of {key} launched from the UI",
    )
    assert client.wait_for_run(run_id, 120) == DagsterRunStatus.SUCCESS


def expect_metadata(page: Page, label: str, value: int) -> None:
    """The asset page's metadata row ``label`` shows ``value``."""
    row = page.get_by_role("row").filter(has=page.get_by_text(label, exact=True))
    expect(row.first).to_contain_text(str(value), timeout=30_000)


def test_the_ui_shows_every_datasets_letters_the_landed_days_and_a_file_that_waits(
    clean_warehouse: Warehouse,
    tmp_path: Path,
    instance_database_url: str,
    browser: Browser,
    artifacts: Path,
) -> None:
    """Left to run itself, the platform loads three days of orders and of events; the browser then
    finds each dataset's dead letters with its count and when they were last observed (its
    *Observe* button observing them again), every landed day on the landing assets' partitions
    pages, and tomorrow's orders file reported as waiting, and why."""
    landing_dir = tmp_path / "landing"
    for n in range(3):
        day = DAY + timedelta(days=n)
        write_day(landing_dir / "orders", day, orders=200, seed=20 + n, malformed_share=0.02)
        write_events_day(landing_dir / "shop_events", day, 200, 30 + n, malformed_share=0.02)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    waiting = write_day(landing_dir / "orders", tomorrow, orders=10, seed=1, malformed_share=0)
    with dagster_dev(landing_dir, tmp_path / "dg-dev.log", instance_database_url) as client:
        wanted = {"sales/orders": 3, "web/shop_events": 3}  # (customers too, if crm has them)

        def both_loaded() -> bool:
            loaded = loaded_partitions(clean_warehouse)
            return all(loaded.get(key) == days for key, days in wanted.items())

        wait_for(both_loaded, 300, "both datasets")
        for run in client.runs_tagged("trigger", "landing_files"):
            assert client.wait_for_run(run.run_id, 120) == DagsterRunStatus.SUCCESS
        letters = dict(
            fetch_all(
                clean_warehouse,
                sql.SQL(
                    "SELECT asset_key, count(*) FROM platform.dead_letter_records"
                    " WHERE status = 'new' GROUP BY 1"
                ),
            )
        )
        assert letters["sales/orders"] > 0 and letters["web/shop_events"] > 0

        page = browser.new_page(viewport={"width": 1400, "height": 900})
        assets = f"http://127.0.0.1:{client.port}/assets"
        page.goto(f"{assets}/sales/orders", wait_until="networkidle")
        dismiss_first_visit_dialog(page)
        for dataset, shot in (("sales/orders", "dead-letters.png"), ("web/shop_events", None)):
            page.goto(f"{assets}/{dataset}_dead_letters", wait_until="networkidle")
            expect_metadata(page, "new", letters[dataset])
            expect_metadata(page, "partitions_with_letters", 3)
            expect(page.get_by_text("Latest observation").first).to_be_visible()
            expect(page.get_by_text("Never materialized")).to_have_count(0)
            if shot:
                page.screenshot(path=str(artifacts / shot))
            observe_from_the_ui(page, client, f"{dataset}_dead_letters")
        for landing in ("orders_files", "shop_events_files"):
            page.goto(f"{assets}/landing/{landing}?view=partitions", wait_until="networkidle")
            expect(page.get_by_text("Materialized (3)")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(artifacts / "landing-days.png"))
        page.goto(f"{assets}/landing/orders_files?view=events", wait_until="networkidle")
        expect(page.get_by_text("1 orders file(s) seen but not loaded").first).to_be_visible(
            timeout=30_000
        )
        why = page.get_by_role("row").filter(has=page.get_by_text("why", exact=True)).first
        expect(why).to_contain_text(waiting.name)
        expect(why).to_contain_text(f"{tomorrow} is not a partition (yet)")
        page.screenshot(path=str(artifacts / "landing-file-waiting.png"))
