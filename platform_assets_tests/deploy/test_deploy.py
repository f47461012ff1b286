"""The Kubernetes deployment in ``deploy/``, checked as far as a machine without a cluster can:
the Helm values agree with the instance, workspace and image they describe, the manifests render
with ``kubectl kustomize`` and validate against Kubernetes' own schemas, the roles Job's command
really sets up a server, and the image's command serves the code location over gRPC."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import kubernetes_validate
import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

from platform_assets.lib import settings
from platform_assets.lib.dagster_dev.process import free_port, stop_process_group
from platform_assets.lib.server import roles
from platform_assets.lib.server.embedded import embedded_admin_url, role_password
from platform_assets.lib.server.instance_storage import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_VAR
from platform_assets.lib.warehouse.resource import Warehouse
from platform_assets_tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"
BIN = Path(sys.executable).parent


def helm_values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def image_command() -> list[str]:
    """The Dockerfile's CMD (its exec form, a JSON array)."""
    (line,) = [x for x in (DEPLOY / "Dockerfile").read_text().splitlines() if x.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def rendered_manifests(kustomization: str = "k8s") -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: the README's test command installs it"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / kustomization)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def test_the_helm_values_match_the_instance_the_workspace_and_the_image() -> None:
    values = helm_values()
    instance = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]

    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert pools["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    assert pools["granularity"] == instance["concurrency"]["pools"]["granularity"]
    # The chart runs Dagster's own queue, which takes whole seconds: the local interval rounded up
    # (a run's pod takes seconds to start, so the finer poll would buy nothing there).
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    local_interval = instance["run_coordinator"]["config"]["dequeue_interval_seconds"]
    assert queued["dequeueIntervalSeconds"] == math.ceil(local_interval)

    monitoring = values["dagsterDaemon"]["runMonitoring"]
    local = instance["run_monitoring"]
    for key in (
        "enabled",
        "start_timeout_seconds",
        "cancel_timeout_seconds",
        "max_resume_run_attempts",
        "poll_interval_seconds",
        "free_slots_after_run_end_seconds",
    ):
        camel = "".join(word.title() for word in key.split("_"))
        assert monitoring[camel[0].lower() + camel[1:]] == local[key], key
    # The chart renders run_retries from additionalInstanceConfig whole (its own keys lack one).
    assert values["dagsterDaemon"]["runRetries"] == {"enabled": False}
    assert values["additionalInstanceConfig"]["run_retries"] == instance["run_retries"]

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    command = image_command()
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert command[command.index("--module-name") + 1] == module
    assert str(deployment["port"]) == command[command.index("--port") + 1]

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == deployment["envSecrets"] == [{"name": "platform-warehouse"}]
    assert launcher["volumes"] == deployment["volumes"]
    mount = deployment["volumeMounts"][0]["mountPath"]
    assert deployment["env"]["PLATFORM_LANDING_DIR"] == mount
    assert f"PLATFORM_LANDING_DIR={mount}" in launcher["envVars"]
    # Run pods store a range's materialisations in batches, as dagster.yaml's storage does.
    assert f"{EVENT_BATCH_SIZE_VAR}={EVENT_BATCH_SIZE}" in launcher["envVars"]

    postgres = values["postgresql"]
    assert postgres["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert postgres["postgresqlUsername"] == roles.INSTANCE
    assert postgres["postgresqlDatabase"] == settings.DAGSTER_DATABASE
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert not re.search(r"(?i)password\s*:", text), "no password belongs in the values"


def test_the_manifests_render_validate_and_agree_with_the_values() -> None:
    manifests = rendered_manifests()
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    kinds = {m["kind"]: m for m in manifests}
    assert set(kinds) == {"Namespace", "PersistentVolumeClaim", "Job"}
    assert all(
        m["metadata"].get("namespace", "data-platform") == "data-platform" for m in manifests
    )

    values = helm_values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    claim = deployment["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == claim

    (container,) = kinds["Job"]["spec"]["template"]["spec"]["containers"]
    image = deployment["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    assert container["command"] == ["platform-db", "apply-roles"]
    (env,) = container["env"]
    assert env["name"] == settings.ADMIN_URL_VAR and "secretKeyRef" in env["valueFrom"]


def helm_merged(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base`` as Helm merges values files: maps key by key, lists whole."""
    merged = dict(base)
    for key, value in overlay.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = helm_merged(base[key], value) if both_maps else value
    return merged


def test_the_s3_values_change_only_the_landing_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    base = helm_values()
    overlay = yaml.safe_load((DEPLOY / "helm" / "values-s3.yaml").read_text())
    values = helm_merged(base, overlay)
    (before,) = base["dagster-user-deployments"]["deployments"]
    (after,) = values["dagster-user-deployments"]["deployments"]
    landing = {"env", "envSecrets", "volumes", "volumeMounts"}
    assert {k: v for k, v in after.items() if k not in landing} == {
        k: v for k, v in before.items() if k not in landing
    }
    assert after["volumes"] == after["volumeMounts"] == []
    assert after["envSecrets"] == [*before["envSecrets"], {"name": "platform-landing-s3"}]
    env = after["env"]
    assert {k: v for k, v in env.items() if not k.startswith(("PLATFORM_LANDING", "AWS_"))} == {
        k: v for k, v in before["env"].items() if not k.startswith("PLATFORM_LANDING")
    }
    assert "PLATFORM_LANDING_DIR" not in env
    monkeypatch.setenv(settings.LANDING_URL_VAR, env[settings.LANDING_URL_VAR])
    assert settings.landing_root() == env[settings.LANDING_URL_VAR]  # the platform takes it

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == after["envSecrets"]
    assert launcher["volumes"] == launcher["volumeMounts"] == []
    assert sorted(launcher["envVars"]) == sorted(
        [f"{k}={v}" for k, v in env.items() if k != "PLATFORM_EXECUTOR"]
        + [f"{EVENT_BATCH_SIZE_VAR}={EVENT_BATCH_SIZE}"]
    )
    assert (
        launcher["runK8sConfig"] == base["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    )  # the rest of the launcher is values.yaml's

    manifests = rendered_manifests("k8s-s3")
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert sorted(m["kind"] for m in manifests) == ["Job", "Namespace"]  # no shared volume


def test_an_invalid_manifest_is_refused_by_the_validation() -> None:
    """The validation is real: a misspelt field fails it."""
    job = next(m for m in rendered_manifests() if m["kind"] == "Job")
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_roles_job_command_sets_up_a_server(warehouse: Warehouse) -> None:
    if warehouse.database_url:
        pytest.fail("this test needs the embedded server's superuser: unset PLATFORM_DATABASE_URL")
    admin = embedded_admin_url("postgres")
    suffix = os.urandom(4).hex()
    databases = {"warehouse": f"wh_{suffix}", "instance": f"meta_{suffix}"}
    job = next(m for m in rendered_manifests() if m["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = [databases["warehouse"] if arg == "warehouse" else arg for arg in container["args"]]
    args = [databases["instance"] if arg == "dagster" else arg for arg in args]
    try:
        for _ in range(2):  # idempotent: a rerun of the Job changes nothing and succeeds
            applied = subprocess.run(
                [str(BIN / container["command"][0]), *container["command"][1:], *args],
                env={**os.environ, settings.ADMIN_URL_VAR: admin},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert applied.returncode == 0, applied.stderr
        owner_url = make_conninfo(
            admin,
            user=roles.OWNER,
            password=role_password(roles.OWNER),
            dbname=databases["warehouse"],
        )
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA loaded_here")
        reader_url = make_conninfo(
            admin,
            user=roles.READER,
            password=role_password(roles.READER),
            dbname=databases["instance"],
        )
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(reader_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                (databases["instance"],),
            ).fetchone()
        assert owner == (roles.INSTANCE,)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in databases.values():
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def test_the_image_command_serves_the_code_location() -> None:
    command = image_command()
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    server = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its process group: the code server and the servers it starts
    )
    try:
        deadline, healthy = time.monotonic() + 120, False
        while time.monotonic() < deadline and server.poll() is None and not healthy:
            check = subprocess.run(
                [str(BIN / "dagster"), "api", "grpc-health-check", "--port", str(port)],
                capture_output=True,
                timeout=60,
            )
            healthy = check.returncode == 0
            time.sleep(0 if healthy else 1)
        assert healthy, server.stderr.read() if server.poll() is not None else "no answer"
    finally:
        stop_process_group(server, signal.SIGTERM, 30)


@pytest.mark.parametrize(
    ("executor", "expected"), [("in_process", "in_process"), ("k8s_job", "k8s")]
)
def test_the_executor_is_chosen_by_the_environment(executor: str, expected: str) -> None:
    chosen = subprocess.run(
        [
            sys.executable,
            "-c",
            "from platform_assets.definitions import defs;"
            "print(defs.get_repository_def().get_job('load_orders').executor_def.name)",
        ],
        env={**os.environ, settings.EXECUTOR_VAR: executor},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip().splitlines()[-1] == expected
