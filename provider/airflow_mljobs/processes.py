"""Which process is which: a pid names a process only with its start time, since pids are reused.

A job's ranks, its submitter, the workspace's tracking server and a background sweep's runner are all found
again from a file (pid and start time) by later processes, which must not take a stranger with a recycled pid
for them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def start_time(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), or None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same_process(pid: int, started: float) -> bool:
    """True while `pid` names the process that started at `started`, ended or not (a zombie's pid is not reused
    before its parent collects its end)."""
    now = start_time(pid)
    return now is not None and abs(now - started) < 0.5


def is_running(pid: int, started: float) -> bool:
    """True while `pid` is still the process that started at `started`, and has not ended (a zombie has)."""
    import psutil

    try:
        return same_process(pid, started) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def note_this_process(path: Path) -> None:
    """Leave this process's pid and start time in `path`, for later processes to tell whether it still runs."""
    path.write_text(json.dumps({"pid": os.getpid(), "create_time": start_time(os.getpid())}))


def noted_process(path: Path) -> tuple[int, bool] | None:
    """The pid `note_this_process` left in `path` and whether that process still runs; None without a note."""
    try:
        noted = json.loads(path.read_text())
        return noted["pid"], is_running(noted["pid"], noted["create_time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
