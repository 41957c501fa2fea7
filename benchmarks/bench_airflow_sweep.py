"""A 50-trial random sweep of a trivial trial under `airflow dags test`, against the same fan-out written as a
plain `@task` with `.expand` (one task instance per trial, the same parameters), in one run.

Each DAG runs once to warm up, then `--repeats` times, alternating; the medians are compared.

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
from airflow.sdk import DAG, task
from airflow_mljobs.airflow.sweep import sweep_job
from airflow_mljobs.sweep import RandomSampler

SPACE = {{"x": {{"type": "uniform", "min_value": 0, "max_value": 1}}}}
JOB = {{"type": "sweep", "trial": {{"command": "echo ${{{{search_space.x}}}}"}}, "sampling_algorithm": {{"type": "random", "seed": 1}},
       "search_space": SPACE, "objective": {{"goal": "maximize", "primary_metric": "m"}},
       "limits": {{"max_total_trials": {trials}, "max_concurrent_trials": 4}}, "experiment_name": "bench"}}

with DAG(dag_id="bench_sweep", schedule=None, catchup=False):
    sweep_job("tune", job=JOB)

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
        times: dict[str, list[float]] = {"bench_expand": [], "bench_sweep": []}
        for dag in ("bench_expand", "bench_sweep") * (args.repeats + 1):  # the first run of each warms up
            start = time.perf_counter()
            result = subprocess.run([airflow, "dags", "test", dag], env=env, capture_output=True, text=True)
            output = result.stdout + result.stderr
            # the trivial trial logs no metric, so the sweep's `best` task has none to pick: that one failure is expected
            assert result.returncode == 0 or "has no trial that completed" in output, output[-3000:]
            times[dag].append(time.perf_counter() - start)
        times = {dag: statistics.median(values[1:]) for dag, values in times.items()}
        ratio = times["bench_sweep"] / times["bench_expand"]
        print(f"{args.trials}-trial sweep  plain @task.expand {times['bench_expand']:6.1f} s | sweep_job (trial jobs, "
              f"MLflow runs) {times['bench_sweep']:6.1f} s | ratio {ratio:4.2f}x (target <= 1.3x)")
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
