"""Every launchpad config the README and docs/ show (a YAML block with ``ops:``) is valid for the
job whose op it names, by that job's own run-config schema in the code location: a renamed op or
field fails here, not in a user's launchpad."""

import re

import dagster as dg
import pytest
import yaml

from platform_assets.definitions import defs
from platform_assets_tests.test_doc_commands import DOCS

YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def documented_run_configs() -> list[tuple[str, dict]]:
    """Each YAML block of the docs that is a run config (starts with ``ops:``), with its file's
    name."""
    found = []
    for doc in DOCS:
        for block in YAML_BLOCK.findall(doc.read_text()):
            if block.startswith("ops:"):  # other blocks are spec fragments (datasets.md)
                found.append((doc.name, yaml.safe_load(block)))
    return found


def job_with_op(op_name: str) -> dg.JobDefinition:
    """The code location's one job that has an op called ``op_name``."""
    (job,) = [
        job
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__") and op_name in {node.name for node in job.nodes}
    ]
    return job


def test_the_docs_show_every_launchpad_config_of_the_dead_letter_and_migration_jobs() -> None:
    shown = {op for _, config in documented_run_configs() for op in config["ops"]}
    assert shown == {
        "replay_dead_letters",
        "discard_dead_letters",
        "export_dead_letters_op",
        "guard",
    }


@pytest.mark.parametrize(
    "config", [config for _, config in documented_run_configs()], ids=lambda c: next(iter(c["ops"]))
)
def test_each_documented_launchpad_config_is_valid_for_its_job(config: dict) -> None:
    (op_name,) = config["ops"]
    dg.validate_run_config(job_with_op(op_name), config)
