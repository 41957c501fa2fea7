"""Which process is which: a pid names a process only with its start time, since pids are reused.

A job's ranks, the workspace's tracking server and a background sweep's runner are all found again from a
file (pid and start time) by later processes, which must not take a stranger with a recycled pid for them.
"""

from __future__ import annotations


def start_time(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), or None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_running(pid: int, started: float) -> bool:
    """True while `pid` is still the process that started at `started`."""
    now = start_time(pid)
    return now is not None and abs(now - started) < 0.5
