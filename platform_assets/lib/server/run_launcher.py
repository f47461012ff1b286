"""The local run launcher: runs start in a worker started ahead of them, and a run whose worker
process died is found and failed.

**Warm workers.** Dagster's ``DefaultRunLauncher`` asks the code server to start each run in a
fresh interpreter, which spends about 2 s importing Dagster, its storage and the code location's
libraries before the run's first step: a fifth of a 120-day range run under ``dg dev``
(docs/results.md). This launcher hands each run to a worker that imported those libraries while
no run was starting (``lib/server/warm_workers.py``, ``lib/server/run_worker.py``), and that runs
``dagster api execute_run``, the command Dagster's container launchers run. The code location
itself is imported after the run arrives, so reloaded code is what runs. The modules to import
ahead are ``preload_modules`` in ``dagster.yaml``. Runs of a code location served by another
Python (its own ``executable_path``) go to their code server as before, and so does every run
with ``warm_workers: false``.

**Health checks.** A worker of this launcher is recorded on its run (``platform/run_worker``: host,
pid, launch time) before it gets the run; the worker also records its pid in the run's event log
as it starts ("Started process for run"). Run monitoring asks ``check_run_worker_health``: the
process is looked up and the worker reported failed when it is gone, a zombie, or a newer process
that reused the pid. Run monitoring then marks the run failed, its pool slots are freed
``free_slots_after_run_end_seconds`` later, and run retries re-execute it (``dagster.yaml``). A
run launched through a code server (``DefaultRunLauncher``) is checked the same way by the pid it
recorded, which the default launcher alone cannot do.

**Termination.** Terminate marks a warm worker's run CANCELING; the worker, which watches its
run's status, interrupts itself until the run ends CANCELED (``lib/server/run_worker.py`` says
why once is not enough). If the worker is gone, run monitoring ends the run after
``cancel_timeout_seconds``.

The checks only judge workers on this machine (this launcher's, or a code server reached over a
unix socket or a loopback address, as under ``dagster dev``); a worker elsewhere is reported
running, never failed on a guess. On Kubernetes the ``K8sRunLauncher`` checks its Jobs itself.
"""

import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import psutil
from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher, Field
from dagster._config.config_schema import UserConfigSchema
from dagster._core.errors import DagsterLaunchFailedError
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_shared import seven

from platform_assets.lib.server.warm_workers import WarmWorkers, WorkerGone

WORKER_STARTED_MESSAGE = "Started process for run"
# The worker a run was handed to by this launcher: {"host", "pid", "launched_at"}.
RUN_WORKER_TAG = "platform/run_worker"
# A process created this long after the worker said it started is another process with its pid.
_CREATE_TIME_SLACK_S = 2.0
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def _launched_worker(run: DagsterRun) -> dict[str, Any] | None:
    """The worker this launcher handed ``run`` to, as recorded on the run, if it did."""
    info = run.tags.get(RUN_WORKER_TAG)
    return seven.json.loads(info) if info else None


def _worker_is_local(run: DagsterRun) -> bool:
    """Whether the run's worker runs on this machine."""
    launched = _launched_worker(run)
    if launched is not None:
        return launched.get("host") == socket.gethostname()
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


class PlatformRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` with warm run workers and health checks (see the module)."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        warm_workers: bool = True,
        preload_modules: Sequence[str] = (),
    ) -> None:
        """Runs go to warm workers importing ``preload_modules`` first, unless ``warm_workers``
        is false."""
        super().__init__(inst_data=inst_data)
        self._warm_workers = WarmWorkers(preload_modules) if warm_workers else None

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        """``warm_workers`` and ``preload_modules``, both optional."""
        return {
            "warm_workers": Field(
                bool,
                is_required=False,
                default_value=True,
                description="Hand runs to workers started ahead of them (else: the code server).",
            ),
            "preload_modules": Field(
                [str],
                is_required=False,
                default_value=[],
                description="Modules a worker imports before its run: libraries, not the code.",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        """The launcher as ``dagster.yaml`` configures it."""
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        """Hand the run to a warm worker if its code runs on this Python, else to its code
        server."""
        run = context.dagster_run
        origin = run.job_code_origin
        if self._warm_workers is None or origin is None or origin.executable_path != sys.executable:
            super().launch_run(context)
            return
        request = serialize_value(
            ExecuteRunArgs(
                job_origin=origin, run_id=run.run_id, instance_ref=self._instance.get_ref()
            )
        )

        def record(pid: int) -> None:
            worker = {"host": socket.gethostname(), "pid": pid, "launched_at": time.time()}
            self._instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: seven.json.dumps(worker)})

        try:
            self._warm_workers.hand_over(request, before=record)
        except WorkerGone as gone:
            raise DagsterLaunchFailedError(f"Run {run.run_id} was not started: {gone}") from gone

    def terminate(self, run_id: str) -> bool:
        """Mark the run CANCELING: its warm worker watches for that and interrupts itself
        (``lib/server/run_worker.py``). A run launched through a code server is terminated by
        it, as by ``DefaultRunLauncher``."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or _launched_worker(run) is None:
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(
            run, message="Terminating: the run's worker interrupts the run."
        )
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        """Yes: by the worker's pid, for workers on this machine."""
        return True

    def _worker_of(self, run: DagsterRun) -> tuple[int, float] | None:
        """The pid the run's worker recorded and when; if it recorded none yet, the worker this
        launcher handed the run to; or None."""
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
        launched = _launched_worker(run)
        if worker is None and launched is not None:
            worker = (int(launched["pid"]), float(launched["launched_at"]))
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
