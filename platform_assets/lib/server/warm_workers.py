"""Run worker processes kept started ahead of their runs, for the run launcher.

One worker (``lib/server/run_worker.py``) waits with its libraries imported. A run takes it (one
that is still importing finishes first), or starts a new one if there is none (the first run this
process launches, or the waiting worker died), and a new worker is started at once to wait for the
next run.
Its imports (1.8 s of CPU) share the machine with the run that just started, which is cheaper
than the 1.6 s a run waits for a worker started when it arrives (docs/results.md).

Every worker handed a run is waited for by a thread, so none is left a zombie. A waiting worker
reads its standard input, which only this process writes: when this process ends, however it
ends, the worker reads the end of input and exits. One waiting worker holds its libraries in
memory (212 MB resident with the platform's list, measured).
"""

import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

WORKER_MODULE = "platform_assets.lib.server.run_worker"


class WorkerGone(Exception):
    """The worker exited before it took its run."""


class WarmWorkers:
    """At most one started run worker waiting for a run; ``hand_over`` gives a run to one."""

    def __init__(self, preload_modules: Sequence[str]) -> None:
        """Workers that import ``preload_modules`` before they wait for their run."""
        self._command = [sys.executable, "-m", WORKER_MODULE, *preload_modules]
        self._lock = threading.Lock()
        self._waiting: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        """A new worker process, importing its modules, then waiting for its run."""
        return subprocess.Popen(self._command, stdin=subprocess.PIPE, text=True)

    def _take(self) -> subprocess.Popen[str]:
        """The waiting worker if it is still alive, or else a new one."""
        with self._lock:
            worker, self._waiting = self._waiting, None
        if worker is None or worker.poll() is not None:
            worker = self._start()
        return worker

    def hand_over(self, request: str, before: Callable[[int], None]) -> int:
        """Give the serialized ``ExecuteRunArgs`` ``request`` to a worker; its pid.

        ``before(pid)`` runs before the worker gets the run (the launcher records the pid on the
        run, so that the run can be checked and terminated from its first moment). Raises
        ``WorkerGone`` if the worker exited before taking the run.
        """
        worker = self._take()
        before(worker.pid)
        try:
            assert worker.stdin is not None
            worker.stdin.write(request + "\n")
            worker.stdin.close()
        except (BrokenPipeError, OSError) as gone:
            worker.kill()
            worker.wait()
            raise WorkerGone(f"run worker {worker.pid} exited ({worker.returncode})") from gone
        threading.Thread(target=worker.wait, name=f"run-worker-{worker.pid}", daemon=True).start()
        self._start_waiting()
        return worker.pid

    def _start_waiting(self) -> None:
        """Start the worker for the next run, unless one is waiting already."""
        with self._lock:
            if self._waiting is None or self._waiting.poll() is not None:
                self._waiting = self._start()
