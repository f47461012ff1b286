"""The run launcher's health check, through Dagster's own run monitoring: a run whose worker
process is gone is failed, from the moment the launcher handed it the run; a live worker, a worker
on another machine, or a run that recorded no worker is left alone; a pid taken over by a newer
process is not mistaken for the worker. Terminate marks a warm worker's run CANCELING (the worker
interrupts itself: ``test_warm_workers.py``)."""

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from platform_assets.lib import settings
from platform_assets.lib.server.run_launcher import (
    RUN_WORKER_TAG,
    PlatformRunLauncher,
    worker_process_health,
)
from platform_assets_tests.conftest import REPO_ROOT

LOCAL = {"host": "localhost", "socket": "/tmp/code-server.sock"}


@pytest.fixture
def instance(
    instance_database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """An instance configured by the repository's dagster.yaml, in a database of its own."""
    monkeypatch.setenv(settings.DAGSTER_STORAGE_URL_VAR, instance_database_url)
    ref = InstanceRef.from_dir(str(tmp_path), config_dir=str(REPO_ROOT))
    with dg.DagsterInstance.from_ref(ref) as configured:
        yield configured


@pytest.fixture
def worker() -> Iterator[subprocess.Popen]:
    """A process standing in for a run worker."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def started_run(instance: dg.DagsterInstance, pid: int, grpc: dict) -> dg.DagsterRun:
    """A run in STARTED whose worker recorded ``pid``, as Dagster's run worker does."""
    run = instance.add_run(
        dg.DagsterRun(
            job_name="load_orders",
            status=dg.DagsterRunStatus.STARTED,
            tags={GRPC_INFO_TAG: json.dumps(grpc)},
        )
    )
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    return run


def monitor(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRunStatus:
    """One look of Dagster's run monitoring at ``run``; its status afterwards."""
    (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
    monitor_started_run(instance, None, record, logging.getLogger("test"))
    return instance.get_run_by_id(run.run_id).status


def test_dagster_yaml_monitors_runs_with_this_launcher(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, PlatformRunLauncher)
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_resume_run_attempts == 0  # a local worker cannot resume
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
    assert instance.run_retries_retry_on_asset_or_op_failure is False


def test_a_run_whose_worker_died_is_failed_by_run_monitoring(
    instance: dg.DagsterInstance, worker: subprocess.Popen
) -> None:
    run = started_run(instance, worker.pid, LOCAL)
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    assert monitor(instance, run) == dg.DagsterRunStatus.STARTED

    worker.kill()
    worker.wait()
    health = instance.run_launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and str(worker.pid) in health.msg
    assert monitor(instance, run) == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    assert f"run worker pid {worker.pid}" in failure[0].event_log_entry.dagster_event.message


def test_what_cannot_be_judged_here_is_left_running(
    instance: dg.DagsterInstance, worker: subprocess.Popen
) -> None:
    remote = started_run(instance, worker.pid, {"host": "code-server.internal", "port": 4000})
    worker.kill()
    worker.wait()
    assert monitor(instance, remote) == dg.DagsterRunStatus.STARTED
    silent = instance.add_run(
        dg.DagsterRun(
            job_name="load_orders",
            status=dg.DagsterRunStatus.STARTED,
            tags={GRPC_INFO_TAG: json.dumps(LOCAL)},
        )
    )
    assert monitor(instance, silent) == dg.DagsterRunStatus.STARTED


def test_a_pid_taken_by_a_newer_process_is_not_the_worker(worker: subprocess.Popen) -> None:
    assert worker_process_health(worker.pid, time.time()).status == WorkerStatus.RUNNING
    later = worker_process_health(worker.pid, time.time() - 60)  # the worker started before it
    assert later.status == WorkerStatus.FAILED and "another" in later.msg


def handed_run(instance: dg.DagsterInstance, pid: int, host: str) -> dg.DagsterRun:
    """A run in STARTED that this launcher handed to worker ``pid`` on ``host``, before the
    worker recorded anything itself."""
    worker = {"host": host, "pid": pid, "launched_at": time.time()}
    return instance.add_run(
        dg.DagsterRun(
            job_name="load_orders",
            status=dg.DagsterRunStatus.STARTED,
            tags={RUN_WORKER_TAG: json.dumps(worker)},
        )
    )


def test_a_warm_worker_is_checked_from_the_moment_it_is_handed_the_run(
    instance: dg.DagsterInstance, worker: subprocess.Popen
) -> None:
    run = handed_run(instance, worker.pid, socket.gethostname())
    remote = handed_run(instance, worker.pid, "another-machine")
    assert monitor(instance, run) == dg.DagsterRunStatus.STARTED
    worker.kill()
    worker.wait()
    assert monitor(instance, remote) == dg.DagsterRunStatus.STARTED
    assert monitor(instance, run) == dg.DagsterRunStatus.FAILURE


def test_terminate_marks_a_warm_workers_run_canceling(
    instance: dg.DagsterInstance, worker: subprocess.Popen
) -> None:
    run = handed_run(instance, worker.pid, socket.gethostname())
    assert instance.run_launcher.terminate(run.run_id) is True
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELING
    assert worker.poll() is None  # the worker interrupts itself; it is not killed from outside
