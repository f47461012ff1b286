"""Files named after the process writing them, so that what a killed process leaves behind is
found and removed by the next one.

The name carries the writer's host and pid (``owner_tag``). A file is abandoned when its host is
this one and no process has its pid; a file of another host (a shared volume) is never judged
from here, since its process cannot be seen.
"""

import contextlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path

import psutil


def owner_tag() -> str:
    """``<host>-<pid>-``: what a file written by this process carries after its prefix."""
    return f"{socket.gethostname()}-{os.getpid()}-"


def _abandoned(name: str, prefix: str) -> bool:
    host = f"{socket.gethostname()}-"
    rest = name.removeprefix(prefix)
    if rest == name or not rest.startswith(host):
        return False
    pid = rest.removeprefix(host).partition("-")[0]
    return pid.isdigit() and not psutil.pid_exists(int(pid))


def remove_abandoned(paths: Iterable[Path], prefix: str) -> list[Path]:
    """Delete those of ``paths`` (named ``prefix`` + an owner tag + anything) whose writer was a
    process of this host that is gone; what was removed."""
    removed = []
    for path in paths:
        if _abandoned(path.name, prefix):
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                path.unlink()
                removed.append(path)
    return removed
