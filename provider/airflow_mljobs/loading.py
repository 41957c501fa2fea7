"""Loading a heavy library (MLflow and its SQL store, matplotlib, Optuna) with the cyclic garbage collector paused.

Each of them loads 10^4 to 10^5 objects that live as long as the process. Loaded with the collector running,
those allocations set off full collections, and each one walks the whole heap (an Airflow task process holds
10^5 to 10^6 objects before the job starts) to find no garbage. Under `airflow dags test`, opening the embedded
store took 1.2 s with the collector running and 0.75 s with it paused; matplotlib's import took 0.47 s and
0.19 s. The objects are not hidden from the collector (nothing is frozen): later collections see them as usual.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block, then restore the host's setting: a host that keeps it off
    keeps it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
