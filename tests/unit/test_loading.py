"""Heavy libraries load with the cyclic collector paused, the host's collector setting survives, and a process
that loaded them skips their teardown at exit."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

import pytest

from airflow_mljobs.loading import collector_paused


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_inside_and_back_on_after(collector_on):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_back_on_after_an_error(collector_on):
    with pytest.raises(ImportError):
        with collector_paused():
            raise ImportError("no such module")
    assert gc.isenabled()


def test_a_host_that_keeps_the_collector_off_keeps_it_off(collector_on):
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_opening_the_embedded_store_sets_off_no_full_collection(tmp_path):
    """MLflow and its SQL store are ~250,000 objects: loaded with the collector running, they set off five full
    collections of the heap; paused, none. Run in a fresh process, where MLflow is not loaded yet."""
    script = textwrap.dedent(f"""
        import gc
        from airflow_mljobs.tracking import open_tracker, resolve_tracking

        full = []
        gc.callbacks.append(lambda phase, info: full.append(1) if phase == "start" and info["generation"] == 2 else None)
        tracker = open_tracker(resolve_tracking({str(tmp_path)!r}))
        assert not tracker.served
        print(len(full), gc.isenabled())
    """)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the embedded store, in tmp_path
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True"]


def test_a_process_that_opened_the_store_freezes_its_heap_at_exit_and_not_before(tmp_path):
    """The freeze runs at exit, before the exit handlers registered before the store was opened (here, one that
    reports what the collector holds frozen when it runs), and never while the process works."""
    script = textwrap.dedent(f"""
        import atexit, gc
        atexit.register(lambda: print("at exit, frozen:", gc.get_freeze_count() > 100_000))
        from airflow_mljobs.tracking import open_tracker, resolve_tracking

        open_tracker(resolve_tracking({str(tmp_path)!r}))
        print("after the load, frozen:", gc.get_freeze_count())
    """)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["after the load, frozen: 0", "at exit, frozen: True"]


def test_a_process_that_loads_nothing_heavy_exits_as_usual():
    script = ("import atexit, gc; atexit.register(lambda: print(gc.get_freeze_count()));"
              "import airflow_mljobs.loading, airflow_mljobs.spec")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]
