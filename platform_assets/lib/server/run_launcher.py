"""The local run launcher, with health checks: a run whose worker process died is found and failed.

Dagster's ``DefaultRunLauncher`` starts each run in a process of the code server and cannot tell
whether that process still lives, so run monitoring cannot find a run whose worker was killed (an
OOM kill, a ``kill -9``, the code server dying with it): the run stays ``STARTED`` forever and
keeps its pool slots. This launcher is the default one plus the health check run monitoring asks
for. The run worker records its pid in the run's event log as it starts ("Started process for
run"); the check looks that process up and reports the worker failed when it is gone, a zombie,
or a newer process that reused the pid. Run monitoring then marks the run failed, its pool slots
are freed ``free_slots_after_run_end_seconds`` later, and run retries re-execute it
(``dagster.yaml``).

The check only judges workers on this machine (a code server reached over a unix socket or a
loopback address, as under ``dagster dev``); a worker elsewhere is reported running, never failed
on a guess. On Kubernetes the ``K8sRunLauncher`` checks its Jobs itself.
"""

import socket
import time

import psutil
from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster_shared import seven

from platform_assets.lib.server.instance_storage import ConfiguredByEnvironment

WORKER_STARTED_MESSAGE = "Started process for run"
# A process created this long after the worker said it started is another process with its pid.
_CREATE_TIME_SLACK_S = 2.0
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def _worker_is_local(run: DagsterRun) -> bool:
    """Whether the run's code server (and so its worker) runs on this machine."""
    info = run.tags.get(GRPC_INFO_TAG)
    if not info:
        return False
    grpc = seven.json.loads(info)
    return bool(grpc.get("socket")) or grpc.get("host") in _LOCAL_HOSTS | {socket.gethostname()}


def worker_process_health(pid: int, started_at: float) -> CheckRunHealthResult:
    """Whether process ``pid``, which said it started at ``started_at`` (epoch seconds), runs."""
    try:
        process = psutil.Process(pid)
        created, status = process.create_time(), process.status()
    except psutil.NoSuchProcess:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone")
    if status == psutil.STATUS_ZOMBIE:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} has exited")
    if created > started_at + _CREATE_TIME_SLACK_S:
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone (its pid now names another)"
        )
    return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is running")


class PlatformRunLauncher(ConfiguredByEnvironment, DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run monitoring can check (see the module)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        """Yes: by the worker's pid, for workers on this machine."""
        return True

    def _worker_of(self, run: DagsterRun) -> tuple[int, float] | None:
        """The pid the run's worker recorded and when, or None if it recorded none (yet)."""
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ENGINE_EVENT
        ).records
        worker = None
        for record in records:  # the last one: a resumed run has several
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None or not (event.message or "").startswith(WORKER_STARTED_MESSAGE):
                continue
            pid = event.engine_event_data.metadata.get("pid")
            if pid is not None:
                worker = (int(pid.value), entry.timestamp)
        return worker

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """FAILED when the run's worker process on this machine is gone; RUNNING otherwise,
        including when the worker cannot be judged from here (remote, or no pid recorded)."""
        if run.is_finished:
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        if not _worker_is_local(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not on this machine")
        worker = self._worker_of(run)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker has recorded no pid")
        return worker_process_health(*worker)

    def get_run_worker_debug_info(
        self, run: DagsterRun, include_container_logs: bool | None = True
    ) -> str | None:
        """What the health check found, for the run's failure message."""
        worker = self._worker_of(run)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(worker[1])) if worker else None
        return f"run worker pid {worker[0]}, started {when}" if worker else None
