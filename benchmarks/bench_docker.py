"""Docker backend costs, as ratios against named baselines, in one run (the image exists: no build is timed).

1. A Docker job through the engine vs. raw `docker run --rm` of the same image and command.
2. A CommandJobOperator task vs. a DockerOperator task (apache-airflow-providers-docker) running the same image
   and command in the same DAG, under `airflow dags test`; task durations read from Airflow's database. The
   first CommandJobOperator of a process pays for loading the engine's modules and clients, as every task
   process of a deployment does; a second one, run after it, shows the cost without that. Both record through
   the workspace's tracking server (alive after the first run), as task processes do, without importing MLflow.

Needs a Docker engine and the `bench` extra: .venv/bin/pip install -e '.[bench]'
Run: .venv/bin/python benchmarks/bench_docker.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bytecode import compile_package
from offline import stay_offline

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "python:3.11-slim"
COMMAND = "python3 -c 'print(sum(range(10**6)))'"


def engine_vs_docker_run(home: Path, repeats: int) -> None:
    from airflow_mljobs.engine import Engine
    from airflow_mljobs.spec import load_text

    engine = Engine(home=home)
    document = load_text(f"command: {COMMAND}\nenvironment: {{image: {IMAGE}}}\ncompute: docker\n", "bench.yml",
                         base_dir=home)
    engine.wait(engine.submit(document))  # warm: store, tracking server, image check
    raw, ours = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network", "host", IMAGE, "sh", "-c", COMMAND], check=True,
                       capture_output=True)
        raw.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = engine.wait(engine.submit(document))
        ours.append(time.perf_counter() - start)
        assert result.status == "Completed"
    r, o = statistics.median(raw), statistics.median(ours)
    print(f"docker job      raw `docker run --rm` {r:5.2f} s | engine (MLflow run, logs, cleanup) {o:5.2f} s | "
          f"ratio {o / r:4.2f}x (target <= 1.1x)")


DAG_FILE = f'''
from airflow.sdk import DAG, task
from airflow.providers.docker.operators.docker import DockerOperator
from airflow_mljobs.airflow.operators import CommandJobOperator

with DAG(dag_id="bench_docker", schedule=None, catchup=False):
    @task
    def warm_up():
        """The first task of `dags test` pays one-off costs (Airflow's in-process API, ~4 s; the docker SDK
        import): this one takes them, so that they land on neither of the two compared."""
        import docker  # noqa: F401

    JOB = {{"command": "{COMMAND}", "environment": {{"image": "{IMAGE}"}}, "compute": "docker", "experiment_name": "bench"}}
    first = CommandJobOperator(task_id="mljobs", job=JOB)
    warm_up() >> [
        first,
        DockerOperator(task_id="docker_operator", image="{IMAGE}", command=["sh", "-c", "{COMMAND}"],
                       network_mode="host", auto_remove="success", mount_tmp_dir=False),
    ]
    first >> CommandJobOperator(task_id="mljobs_again", job=JOB)  # the engine's modules are loaded already
'''


def operator_vs_docker_operator(folder: Path, repeats: int) -> None:
    dags = folder / "dags"
    dags.mkdir(parents=True)
    (dags / "bench_docker.py").write_text(textwrap.dedent(DAG_FILE))
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
           "AIRFLOW_HOME": str(folder / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "MLJOBS_HOME": str(folder / "mljobs")}
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    for _ in range(repeats + 1):  # the first run warms the store and the tracking server
        result = subprocess.run([airflow, "dags", "test", "bench_docker"], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    db = sqlite3.connect(folder / "airflow" / "airflow.db")
    rows = db.execute("select task_id, (julianday(end_date) - julianday(start_date)) * 86400 from task_instance "
                      "where dag_id = 'bench_docker' order by start_date").fetchall()
    durations: dict[str, list[float]] = {}
    for task, seconds in rows:
        durations.setdefault(task, []).append(seconds)
    ours, again, theirs = (statistics.median(durations[task][1:]) for task in ("mljobs", "mljobs_again",
                                                                                "docker_operator"))
    print(f"airflow task    DockerOperator {theirs:5.2f} s | CommandJobOperator (MLflow run, logs, cleanup) "
          f"{ours:5.2f} s | ratio {ours / theirs:4.2f}x (target <= 1.0x) | a second one in the same process "
          f"{again:5.2f} s, {again / theirs:4.2f}x")
    their_import, our_import = (import_seconds(module, repeats) for module in (
        "airflow.providers.docker.operators.docker", "airflow_mljobs.airflow.operators"))
    print(f"with the import of the operator's module (paid where the DAG file is parsed, outside the task's "
          f"duration): DockerOperator {theirs + their_import:5.2f} s ({their_import * 1000:.0f} ms of import) | "
          f"CommandJobOperator {ours + our_import:5.2f} s ({our_import * 1000:.0f} ms) | ratio "
          f"{(ours + our_import) / (theirs + their_import):4.2f}x")


def import_seconds(module: str, repeats: int) -> float:
    """The median time a fresh interpreter that has Airflow's task SDK loaded takes to import `module`: a DAG
    file's parse pays it, in the task process and at every parse of the DAG processor."""
    code = ("import time, importlib, airflow.sdk; t = time.perf_counter(); importlib.import_module(%r); "
            "print(time.perf_counter() - t)" % module)
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout.split()[-1]) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    compile_package()
    stay_offline()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        try:
            engine_vs_docker_run(home / "engine", args.repeats)
            operator_vs_docker_operator(home / "airflow-bench", args.repeats)
        finally:
            from airflow_mljobs.tracking.server import stop_server

            stop_server(home / "engine")
            stop_server(home / "airflow-bench" / "mljobs")


if __name__ == "__main__":
    main()
