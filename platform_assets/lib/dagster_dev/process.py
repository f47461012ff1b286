"""``dg dev`` (which runs ``dagster dev``) started from the repository root, as the README starts
it, for the length of a ``with`` block."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (OSError, requests.RequestException):
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def running_dagster_dev(
    repo_root: Path, port: int, env: Mapping[str, str], log_path: Path, ready: Callable[[], object]
) -> Iterator[subprocess.Popen]:
    """``dg dev -p port`` in ``repo_root`` with ``env`` and ``DAGSTER_HOME=repo_root`` (the
    README's command), logging to ``log_path``, until the block ends; yields once ``ready()``
    answers. Stopped by SIGINT as a person would (Ctrl-C), killed if it does not stop within a
    minute."""
    dg = Path(sys.executable).with_name("dg")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(dg), "dev", "-p", str(port)],
            cwd=repo_root,
            env={**env, "DAGSTER_HOME": str(repo_root)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A shell starts background jobs with SIGINT ignored, and children inherit that: then
            # `dagster dev` would never see the SIGINT that stops it. It must, however launched.
            preexec_fn=_default_sigint,
        )
    try:
        wait_for(ready, 180, f"dagster dev (log: {log_path})")
        yield process
    finally:
        stop_process_group(process, signal.SIGINT, 60)


def stop_process_group(process: subprocess.Popen, first: signal.Signals, grace_s: float) -> None:
    """Send ``first`` to the whole process group ``process`` leads (started with
    ``start_new_session``), give ``process`` ``grace_s`` to end, then SIGKILL whatever is left of
    the group: nothing it started outlives it, even a child that ignored ``first`` while its
    parent ended (a code server of ``dagster dev`` once outlived a test by half an hour)."""
    with suppress(ProcessLookupError):  # the whole group may have ended already
        os.killpg(process.pid, first)
    with suppress(subprocess.TimeoutExpired):  # then killed with the rest
        process.wait(timeout=grace_s)
    with suppress(ProcessLookupError):  # nothing left: the usual case
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
