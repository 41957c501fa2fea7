"""Loading a heavy library (MLflow and its SQL store, matplotlib, Optuna) with the cyclic garbage collector paused,
and sparing the process the teardown of what it loaded.

Each of them loads many objects that live as long as the process. Loaded with the collector running, those
allocations set off full collections, each walking the whole heap of an Airflow task process to find no
garbage. The objects are not hidden from the collector while the process runs: later collections see them.

At exit, an interpreter that ends normally (the CLI, `airflow dags test`, `dag.test()` under pytest) tears its
modules down and frees their objects one by one. A deployed task process skips it already: Airflow's task runner
runs the exit handlers, then leaves with `os._exit`. (BENCHMARKS.md has the figures.) Here, once a heavy library is loaded, an exit handler freezes the heap, so the final
collections pass over it; every object still reachable is freed by the operating system instead. Every exit
handler still runs, before or after the freeze.
Python makes no promise to finalize objects that live until exit, and nothing of ours relies on it: files are
flushed and closed, and the store's writes are committed, where they are made.
"""

from __future__ import annotations

import atexit
import gc
from contextlib import contextmanager
from typing import Iterator

_teardown_skipped = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block, then restore the host's setting (a host that keeps it off
    keeps it off), and skip the teardown of what was loaded at exit."""
    if gc.isenabled():
        gc.disable()
        try:
            yield
        finally:
            gc.enable()
    else:
        yield
    skip_teardown_at_exit()


def skip_teardown_at_exit() -> None:
    """Freeze the heap when the process exits. Exit handlers run last registered, first run: those registered
    after this call (a loaded library's own) run before the freeze, those registered before it run after. The
    first call places it; later ones leave it there, so a command line that calls this as it starts keeps the
    freeze behind the handlers of everything it loads."""
    global _teardown_skipped
    if not _teardown_skipped:
        _teardown_skipped = True
        atexit.register(gc.freeze)
