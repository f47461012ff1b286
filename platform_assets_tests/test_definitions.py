"""The code location loads, validates, and has the asset graph we expect."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from platform_assets.definitions import defs
from platform_assets.defs.sales.automation import follow_upstream
from platform_assets_tests.conftest import ASSET_KEYS, REPO_ROOT


def test_definitions_validate() -> None:
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == ASSET_KEYS
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["sales", "daily_order_metrics"])).parent_keys == {
        dg.AssetKey(["sales", "orders"])
    }
    checks = {key.to_user_string() for key in graph.asset_check_keys}
    dataset_checks = ("rows_add_up", "dead_letter_ratio", "keys_valid", "row_volume")
    assert checks == {
        *(
            f"{dataset}:{check}"
            for dataset in ("sales/orders", "web/shop_events")
            for check in (*dataset_checks, "column_schema_change")
        ),
        *(
            f"staging/customers:{check}"
            for check in (*dataset_checks[:-1], "source_rows_accounted", "column_schema_change")
        ),
        "sales/daily_order_metrics:reconciles_with_orders",
    }


def test_every_asset_that_writes_the_warehouse_is_pooled_checked_and_backfills_in_ranges() -> None:
    graph = defs.resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    writers = [node for node in graph.asset_nodes if node.is_materializable]
    assert {node.key.to_user_string() for node in writers} == {
        "sales/orders",
        "sales/daily_order_metrics",
        "staging/customers",
        "web/shop_events",
    }
    for node in writers:
        assert node.key in checked, node.key
        assert node.pools == {"warehouse"}, node.key
        assert node.freshness_policy is not None, node.key
        if node.is_partitioned:
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), node.key
    repository = defs.get_repository_def()
    for job_name, op_name in (
        ("replay_dead_letters_job", "replay_dead_letters"),
        ("discard_dead_letters_job", "discard_dead_letters"),
    ):
        assert repository.get_job(job_name).graph.node_named(op_name).definition.pool == "warehouse"
    metrics = graph.get(dg.AssetKey(["sales", "daily_order_metrics"]))
    assert metrics.automation_condition == follow_upstream
    assert set(defs.resources) >= {"warehouse", "io_manager", "landing"}


def test_dg_check_defs_validates_the_project() -> None:
    """`dg check defs`, run from the repository root, loads the project's definitions."""
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "check", "defs"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "All definitions loaded successfully" in completed.stdout + completed.stderr


def _descriptions() -> dict[str, str]:
    """Every description the UI shows: assets, checks, jobs and their ops, sensors, schedules,
    resources."""
    repository = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    shown = {f"asset {n.key.to_user_string()}": n.description for n in graph.asset_nodes}
    shown |= {
        f"check {k.to_user_string()}": graph.get(k).description for k in graph.asset_check_keys
    }
    for job in repository.get_all_jobs():
        shown[f"job {job.name}"] = job.description
        shown |= {f"op {job.name}/{op.name}": op.description for op in job.graph.node_defs}
    shown |= {f"sensor {s.name}": s.description for s in repository.sensor_defs}
    shown |= {f"schedule {s.name}": s.description for s in repository.schedule_defs}
    shown |= {
        f"resource {key}": resource.description or ""
        for key, resource in repository.get_top_level_resources().items()
    }
    return {where: text for where, text in shown.items() if text}


def test_ui_descriptions_and_help_have_no_literal_double_backticks() -> None:
    literal = {where: text[:80] for where, text in _descriptions().items() if "``" in text}
    assert literal == {}
    for script in ("platform-sample-data", "platform-db"):
        shown = subprocess.run(
            [str(Path(sys.executable).with_name(script)), "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "``" not in shown.stdout, script
