"""A 50-trial random sweep of a trivial trial under `airflow dags test`, against the same fan-out written as a
plain `@task` with `.expand` (one task instance per trial, the same parameters), in one run.

Each DAG runs once to warm up, then `--repeats` times, alternating; the medians are compared.

A process that loads MLflow through this provider skips the teardown of its heap at exit (gc.freeze, see
`airflow_mljobs/loading.py`); that also spares Airflow's own teardown. So the plain DAG is timed a second way,
with the same freeze at its exit, and the sweep is compared with both: the second is the stricter baseline.

Run: .venv/bin/python benchmarks/bench_airflow_sweep.py [--trials 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bytecode import compile_package
from offline import stay_offline

DAGS = '''
import os
from airflow.sdk import DAG, task
from airflow_mljobs.airflow.sweep import sweep_job
from airflow_mljobs.sweep import RandomSampler

SPACE = {{"x": {{"type": "uniform", "min_value": 0, "max_value": 1}}}}
JOB = {{"type": "sweep", "trial": {{"command": "echo ${{{{search_space.x}}}}"}}, "sampling_algorithm": {{"type": "random", "seed": 1}},
       "search_space": SPACE, "objective": {{"goal": "maximize", "primary_metric": "m"}},
       "limits": {{"max_total_trials": {trials}, "max_concurrent_trials": 4}}, "experiment_name": "bench"}}

with DAG(dag_id="bench_sweep", schedule=None, catchup=False):
    sweep_job("tune", job=JOB)

if os.environ.get("BENCH_FREEZE_AT_EXIT"):  # the plain DAG given the same exit as the sweep's process
    import atexit, gc
    atexit.register(gc.freeze)

with DAG(dag_id="bench_expand", schedule=None, catchup=False):
    @task
    def trials() -> list[dict]:
        return [RandomSampler(1).suggest(SPACE, (), i) for i in range({trials})]

    @task(max_active_tis_per_dagrun=4)
    def trial(point: dict) -> dict:
        import subprocess
        subprocess.run(["bash", "-c", f"echo {{point['x']}}"], check=True)
        return point

    @task
    def best(results: list) -> dict:
        return max(results, key=lambda r: r["x"])

    best(trial.expand(point=trials()))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    stay_offline()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "dags").mkdir()
        (root / "dags" / "bench.py").write_text(textwrap.dedent(DAGS.format(trials=args.trials)))
        airflow = str(Path(sys.executable).parent / "airflow")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING_URI"))},
               "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "MLJOBS_HOME": str(root / "mljobs")}
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        runs = {"plain": ("bench_expand", {}), "plain, frozen at exit": ("bench_expand", {"BENCH_FREEZE_AT_EXIT": "1"}),
                "sweep": ("bench_sweep", {})}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for name in list(runs) * (args.repeats + 1):  # the first run of each warms up
            dag, extra = runs[name]
            start = time.perf_counter()
            result = subprocess.run([airflow, "dags", "test", dag], env={**env, **extra}, capture_output=True,
                                    text=True)
            output = result.stdout + result.stderr
            # the trivial trial logs no metric, so the sweep's `best` task has none to pick: that one failure is expected
            assert result.returncode == 0 or "has no trial that completed" in output, output[-3000:]
            times[name].append(time.perf_counter() - start)
        times = {name: statistics.median(values[1:]) for name, values in times.items()}
        sweep, plain, frozen = times["sweep"], times["plain"], times["plain, frozen at exit"]
        print(f"{args.trials}-trial sweep  plain @task.expand {plain:6.1f} s | sweep_job (trial jobs, MLflow runs) "
              f"{sweep:6.1f} s | ratio {sweep / plain:4.2f}x (target <= 1.3x) | against the plain DAG frozen at "
              f"exit too ({frozen:.1f} s) {sweep / frozen:4.2f}x")
        print("task instances  median seconds: " + " | ".join(
            f"{dag}.{task} {seconds:.3f}" for (dag, task), seconds in task_durations(root / "airflow" / "airflow.db")))


def task_durations(database: Path) -> list[tuple[tuple[str, str], float]]:
    """The median duration of each task (mapped instances pooled), from Airflow's own records."""
    import sqlite3

    rows = sqlite3.connect(database).execute(
        "select dag_id, task_id, (julianday(end_date) - julianday(start_date)) * 86400 from task_instance "
        "where end_date is not null").fetchall()
    pooled: dict[tuple[str, str], list[float]] = {}
    for dag, task, seconds in rows:
        pooled.setdefault((dag.removeprefix("bench_"), task), []).append(seconds)
    return sorted((key, statistics.median(values)) for key, values in pooled.items())


if __name__ == "__main__":
    main()
