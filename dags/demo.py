"""`make demo`: validate every example, print a plan, then run the example DAG end to end with Airflow.

Everything lands in `.mljobs/` (jobs, the MLflow store, the demo's Airflow home); the last lines say how to
look at the result in the MLflow UI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from airflow_mljobs.spec import SpecError, load

HERE = Path(__file__).resolve().parent
JOBS = HERE / "jobs"
BIN = Path(sys.executable).parent


def validate_examples() -> int:
    failures = 0
    for path in sorted(JOBS.rglob("*.yml")):
        if path.parent.name == "environment" or path.name == "environment.yml":
            continue  # conda files, read through the jobs that name them
        try:
            document = load(path)
        except SpecError as error:
            failures += 1
            print(f"INVALID {path.relative_to(JOBS)}\n{error}")
            continue
        print(f"ok  {document.kind:<11} {path.relative_to(JOBS)}  ({len(document.warnings)} warnings)")
    return failures


def run(*args: str, env: dict | None = None) -> None:
    print(f"\n$ {' '.join(args)}", flush=True)
    subprocess.run(args, check=True, env=env)


def main() -> int:
    if validate_examples():
        return 1
    home = Path(os.environ.get("MLJOBS_HOME", Path.cwd() / ".mljobs")).resolve()
    env = {**os.environ, "MLJOBS_HOME": str(home)}
    run(str(BIN / "mljobs"), "job", "validate", "-f", str(JOBS / "seed-2021-05" / "job.yml"), env=env)
    run(str(BIN / "mljobs"), "job", "create", "-f", str(JOBS / "iris" / "job.yml"), "--dry-run", env=env)
    run(str(BIN / "mljobs"), "job", "create", "-f", str(JOBS / "hello-world.yml"), "--stream", env=env)
    airflow_env = {**env, "AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(HERE),
                   "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, env=airflow_env, stdout=subprocess.DEVNULL)
    run(str(BIN / "airflow"), "dags", "test", "iris_training", env=airflow_env)
    run(str(BIN / "mljobs"), "job", "list", "--max-results", "5", env=env)
    print(f"\nThe runs are in {home}. Look at them with:\n"
          f"  {BIN / 'mlflow'} ui --backend-store-uri sqlite:///{home / 'mlflow.db'} --port 5000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
