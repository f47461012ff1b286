"""A run worker started before its run: ``python -m platform_assets.lib.server.run_worker MODULE…``.

Most of a run worker's start is importing libraries (Dagster, its Postgres storage, pandas,
pyarrow, ADBC): 1.6 s of the 1.97 s a fresh worker took on the benchmark machine before the run
started. This process imports the ``MODULE`` arguments at once, then waits on its
standard input for the one run it will execute: a line holding Dagster's serialized
``ExecuteRunArgs``. It then runs ``dagster api execute_run`` with those arguments, in this process,
exactly as Dagster's container launchers run it in theirs: the run's job is reconstructed from its
code origin, the worker records its pid, writes the run's events and exits when the run ends.

Only third-party modules are preloaded. The code location (``platform_assets``) is imported after
the run arrives, so a worker waiting while ``dg dev`` reloads the code still runs the new code.

**Termination.** Terminate marks the run CANCELING. A thread of this worker looks at the run's
status every second and, while it is CANCELING, interrupts the worker (SIGINT) every second until
the run ends. One interrupt is not enough: Dagster's in-process executor turns an interrupt inside
a step that has a ``RetryPolicy`` (every step that writes the warehouse has one) into a retry of
the step, and the run went on (dagster-io/dagster#15026, still open). An interrupt that arrives
while the step waits for its retry is raised when the retry starts, outside the step's code, and
ends the run CANCELED: a load in progress is rolled back, and Terminate takes effect within the
step's retry delay (10 s ± jitter for the steps that write the warehouse) rather than at once.

End of input before a run (the launcher's process ended) or an interrupt while waiting ends the
worker quietly. A module that cannot be imported is reported on standard error and left to the run,
which imports what it needs itself and fails with Dagster's own error if that is missing.
"""

import importlib
import os
import runpy
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence

CANCEL_POLL_S = 1.0


def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` now, so that the run does not wait for them."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # the run imports it itself and reports what is wrong there
            print(f"run worker: could not preload {module}:", file=sys.stderr)
            traceback.print_exc()


def interrupt_while_canceling(request: str) -> None:
    """Interrupt this worker every ``CANCEL_POLL_S`` while its run is CANCELING (see the module);
    return once the run has ended."""
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import deserialize_value

    args = deserialize_value(request, ExecuteRunArgs)
    time.sleep(CANCEL_POLL_S)  # not while the run starts
    with DagsterInstance.from_ref(args.instance_ref) as instance:
        while True:
            run = instance.get_run_by_id(args.run_id)
            if run is None or run.is_finished:
                return
            if run.status == DagsterRunStatus.CANCELING:
                os.kill(os.getpid(), signal.SIGINT)
            time.sleep(CANCEL_POLL_S)


def main() -> None:
    """Preload, wait for the run, execute it as ``dagster api execute_run`` would."""
    try:
        preload(sys.argv[1:])
        request = sys.stdin.readline().strip()
    except KeyboardInterrupt:  # Ctrl-C of dg dev before a run came
        return
    if not request:  # the launcher's process ended
        return
    sys.stdin.close()
    threading.Thread(
        target=interrupt_while_canceling, args=(request,), name="cancel-watch", daemon=True
    ).start()
    sys.argv = ["dagster", "api", "execute_run", request]
    runpy.run_module("dagster", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
