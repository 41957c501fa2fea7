"""JobSensor under a real Airflow 3: it waits for jobs the CLI started, polling or deferred."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MLJOBS = str(Path(sys.executable).parent / "mljobs")


def _create(airflow_home, tmp_path, name: str, command: str) -> None:
    """Start a job from the CLI, as a colleague would, and return at once (its watcher follows it)."""
    job = tmp_path / f"{name}.yml"
    job.write_text(json.dumps({"command": command, "experiment_name": "airflow-sensed"}))
    started = subprocess.run([MLJOBS, "job", "create", "-f", str(job), "--name", name], env=airflow_home.env,
                             capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr


def _returned(airflow_home, dag_id: str) -> dict:
    """{task_id: return value} of the DAG's latest run, read from Airflow's own database."""
    with sqlite3.connect(airflow_home.root / "airflow" / "airflow.db") as db:
        rows = db.execute("select task_id, value from xcom where key = 'return_value' and "
                          "dag_run_id = (select max(id) from dag_run where dag_id = ?)", (dag_id,)).fetchall()
    return {task: json.loads(value) for task, value in rows}


def test_the_sensor_waits_for_a_job_started_elsewhere_polling_and_deferred(test_airflow, tmp_path):
    name = f"sensed-{os.getpid()}-{int(time.time())}"
    _create(test_airflow, tmp_path, name,
            "sleep 4; python -c \"import mlflow; mlflow.log_metric('quality', 0.75)\"")
    started = time.time()
    result = test_airflow.dags_test("mljobs_sensor", "-c", json.dumps({"job": name}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert time.time() - started > 3  # it waited for the job to end
    returned = _returned(test_airflow, "mljobs_sensor")
    for task in ("wait", "wait_deferred"):
        assert returned[task]["name"] == name and returned[task]["status"] == "Completed"
        assert returned[task]["metrics"] == {"quality": 0.75}


def test_the_sensor_fails_when_the_job_failed(test_airflow, tmp_path):
    name = f"sensed-failing-{os.getpid()}-{int(time.time())}"
    _create(test_airflow, tmp_path, name, "echo giving up; exit 6")
    result = test_airflow.dags_test("mljobs_sensor", "-c", json.dumps({"job": name}))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"job {name} Failed" in output and "exited with code 6" in output
