"""Every shell command the README and docs/ show is run by a test as written (an example host
replaced by the test's server), or needs what no test machine has (a Kubernetes cluster, an image
registry, Helm) and is named here as such. A command added to a shell block of the docs fails
``test_every_documented_command_is_run_by_a_test`` until a test runs it."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from platform_assets.lib import settings
from platform_assets.lib.dagster_dev.client import DagsterDevClient
from platform_assets.lib.dagster_dev.process import stop_process_group, wait_for
from platform_assets.lib.samples.sample_orders import write_day
from platform_assets.lib.server.embedded import stop_embedded_server
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT
from platform_assets_tests.helpers import fetch_all

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"```(?:sh|bash)\n(.*?)```", re.S)
BIN = Path(sys.executable).parent
UI_PORT = 3000  # command 1's `dg dev`, on its default port

# Where each documented command runs: the start of the command, and the test running it.
COMMAND_1 = "python3 -m venv .venv && .venv/bin/pip install -e . && "
COMMAND_2 = "{ { command -v chromium-headless-shell && command -v kubectl; } ||"
RANGE_COMMAND = ".venv/bin/dg launch --assets "
ROLES_RECIPE = ".venv/bin/platform-db roles-sql "
RUN_BY = {
    COMMAND_1: "test_command_1_sets_up_and_starts_the_platform",
    COMMAND_2: ".ci/run, which runs the README's test command exactly as written",
    RANGE_COMMAND: "test_the_range_command_loads_the_month_in_one_run",
    ROLES_RECIPE: "test_the_roles_recipe_sets_up_a_fresh_server",
}
# deploy.md's steps: docker builds and pushes the image, kubectl and helm act on a cluster. What
# can be checked offline is (deploy/test_deploy.py: the manifests rendered and validated).
NEEDS_A_CLUSTER = ("docker ", "kubectl ", "helm ")
# The superuser's URL of the embedded server of the data directory in the environment.
ADMIN_URL_OF_THE_DATA_DIR = (
    "from platform_assets.lib.server.embedded import embedded_admin_url;"
    " print(embedded_admin_url('postgres'))"
)


def documented_commands() -> list[str]:
    """Every command of every shell block of the README and docs/, continuation lines joined,
    comments and blank lines left out."""
    commands = []
    for doc in DOCS:
        for block in SHELL_BLOCK.findall(doc.read_text()):
            for line in re.sub(r"\\\n\s*", "", block).splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    commands.append(line.strip())
    return commands


def the_command(start: str) -> str:
    """The one documented command beginning with ``start``."""
    (command,) = [c for c in documented_commands() if c.startswith(start)]
    return command


def test_every_documented_command_is_run_by_a_test() -> None:
    commands = documented_commands()
    assert len(commands) >= 10  # the blocks were found
    unproven = [c for c in commands if not c.startswith((*RUN_BY, *NEEDS_A_CLUSTER))]
    assert unproven == []
    assert the_command(COMMAND_2) in (REPO_ROOT / ".ci" / "run").read_text()
    tests = Path(__file__).read_text()
    for start, runner in RUN_BY.items():
        assert runner.startswith(".ci/") or f"def {runner}(" in tests, start


@contextmanager
def repository_copy(tmp_path: Path) -> Iterator[Path]:
    """The repository's files (tracked and new, not ignored) copied to a fresh directory, as a
    clone would have them; its embedded server stopped at the end."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = tmp_path / "clone"
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    try:
        yield copy
    finally:
        stop_embedded_server(copy / ".platform")


def test_command_1_sets_up_and_starts_the_platform(tmp_path: Path) -> None:
    """The README's command 1, verbatim, in a copy of the repository: a new virtualenv, the
    install, the sample data, `dg dev` answering with the code location's assets; then stopped."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGSTER_HOME", "VIRTUAL_ENV") and not k.startswith("PLATFORM_")
    }
    with socket.socket() as probe:  # command 1 serves the UI on its default port
        assert probe.connect_ex(("127.0.0.1", UI_PORT)) != 0, f"port {UI_PORT} is in use"
    with repository_copy(tmp_path) as copy, (tmp_path / "command-1.log").open("w") as log:
        started = subprocess.Popen(
            ["bash", "-c", the_command(COMMAND_1)],
            cwd=copy,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = DagsterDevClient(UI_PORT)

        def answering() -> bool:
            assert started.poll() is None, f"command 1 ended: {tmp_path / 'command-1.log'}"
            return client.ready()

        try:
            wait_for(answering, 900, f"command 1's UI (log: {tmp_path / 'command-1.log'})")
            nodes = client.query("{ assetNodes { assetKey { path } } }")["assetNodes"]
            assert ["sales", "orders"] in [node["assetKey"]["path"] for node in nodes]
        finally:
            stop_process_group(started, signal.SIGTERM, 60)
        assert len(list((copy / ".platform" / "landing" / "orders").iterdir())) > 300


def test_the_range_command_loads_the_month_in_one_run(
    clean_warehouse: Warehouse, tmp_path: Path
) -> None:
    """operations.md's `dg launch --partition-range`, verbatim, on a month of sample files."""
    command = the_command(RANGE_COMMAND)
    first, last = re.search(r"--partition-range (\S+)\.\.\.(\S+)", command).groups()
    days = range(int(first[-2:]), int(last[-2:]) + 1)
    for day in days:
        on = date.fromisoformat(f"{first[:8]}{day:02d}")
        write_day(tmp_path / "orders", on, orders=30, seed=day, malformed_share=0)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env[settings.LANDING_DIR_VAR] = str(tmp_path)
    launched = subprocess.run(
        ["bash", "-c", command.replace(".venv/bin/", f"{BIN}/")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    accounted = fetch_all(
        clean_warehouse,
        sql.SQL(
            "SELECT count(*), count(DISTINCT run_id), min(partition_key), max(partition_key)"
            " FROM platform.ingestion_accounting"
        ),
    )
    assert accounted == [(len(days), 1, first, last)]
    metric_days = fetch_all(
        clean_warehouse,
        sql.SQL("SELECT count(DISTINCT metric_date) FROM sales.daily_order_metrics"),
    )
    assert metric_days == [(len(days),)]


def test_the_roles_recipe_sets_up_a_fresh_server(tmp_path: Path) -> None:
    """operations.md's recipe for an external server, verbatim but for the server's URL, on a
    new cluster with no platform database: the databases and roles are made, twice over."""
    data_dir = tmp_path / "fresh-server"
    fresh = {**os.environ, settings.DATA_DIR_VAR: str(data_dir)}
    started = subprocess.run(
        [str(BIN / "platform-db"), "start"], env=fresh, capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr
    try:
        admin = subprocess.run(
            [sys.executable, "-c", ADMIN_URL_OF_THE_DATA_DIR],
            env=fresh,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in ("warehouse", "dagster"):  # a fresh server: no platform database yet
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        recipe = the_command(ROLES_RECIPE).replace(".venv/bin/", f"{BIN}/")
        recipe = re.sub(r'"postgresql://[^"]+"', f"'{admin}'", recipe)
        for _ in range(2):  # again on a server already set up: idempotent
            applied = subprocess.run(
                ["bash", "-o", "pipefail", "-c", recipe],
                env=fresh,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert applied.returncode == 0, applied.stderr
        with psycopg.connect(admin, autocommit=True) as conn:
            made = conn.execute(
                "SELECT datname, pg_get_userbyid(datdba),"
                " has_database_privilege('platform_owner', datname, 'CREATE')"
                " FROM pg_database WHERE datname IN ('warehouse', 'dagster') ORDER BY 1"
            ).fetchall()
        assert made == [("dagster", "dagster_instance", False), ("warehouse", made[1][1], True)]
    finally:
        stop_embedded_server(data_dir)
