"""CommandJobOperator under a real Airflow 3 (`airflow dags test`, SQLite), recording into a real MLflow store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from airflow_mljobs.tracking import tags as T
from tests.engine.conftest import alive, mlflow_server, unique  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def _runs(engine, experiment):
    return engine.tracker.list_jobs(experiment=experiment, max_results=100)


def test_example_dag_trains_after_etl_and_reads_the_metric_back(example_airflow):
    result = example_airflow.dags_test("iris_training", "-c", json.dumps({"n_estimators": 7}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "accuracy" in output  # the job's own log line, streamed into the task log
    assert "test_accuracy=" in output  # printed by the downstream task from MLflow
    (run,) = _runs(example_airflow.engine(), "iris-airflow")
    tags = run.data.tags
    assert tags[T.STATUS] == "Completed"
    assert tags["mljobs.airflow.dag_id"] == "iris_training" and tags["mljobs.airflow.task_id"] == "train"
    assert run.data.params["inputs.n_estimators"] == "7"  # from the DAG-run conf, through a Param
    assert run.data.metrics["test_accuracy"] > 0.8
    assert run.data.tags[T.JOB_NAME].startswith("iris_training-manual")


def test_failing_job_fails_the_task_with_the_log_tail(test_airflow):
    result = test_airflow.dags_test("mljobs_failing")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "exited with code 5" in output and "final words before dying" in output
    runs = [r for r in _runs(test_airflow.engine(), "airflow-tests") if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_failing"]
    assert [r.data.tags[T.STATUS] for r in runs] == ["Failed"]


def test_an_exit_code_in_skip_on_exit_code_skips_the_task_and_another_fails_it(test_airflow):
    import sqlite3

    result = test_airflow.dags_test("mljobs_skip")
    assert result.returncode != 0  # `broken` failed
    db = sqlite3.connect(test_airflow.root / "airflow" / "airflow.db")
    states = dict(db.execute("select task_id, state from task_instance where dag_id = 'mljobs_skip'").fetchall())
    assert states == {"nothing_new": "skipped", "broken": "failed"}
    runs = [r for r in _runs(test_airflow.engine(), "airflow-tests") if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_skip"]
    codes = {r.data.tags["mljobs.airflow.task_id"]: (r.data.tags[T.STATUS], r.data.tags[T.EXIT_CODE]) for r in runs}
    assert codes == {"nothing_new": ("Failed", "99"), "broken": ("Failed", "3")}  # the record says what ran


def test_task_timeout_kills_the_job_through_on_kill(test_airflow):
    started = time.time()
    result = test_airflow.dags_test("mljobs_timeout")
    assert result.returncode != 0
    engine = test_airflow.engine()
    (run,) = [r for r in _runs(engine, "airflow-tests") if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_timeout"]
    assert run.data.tags[T.STATUS] == "Canceled"
    assert run.data.tags[T.REASON] == "killed by Airflow"
    pids = [int(p) for p in (engine.job_dir(run.data.tags[T.JOB_NAME]) / "wd" / "pids").read_text().split()]
    assert len(pids) == 2 and alive(pids) == []
    assert time.time() - started < 120


def test_a_retry_runs_under_a_new_name_and_succeeds(test_airflow):
    result = test_airflow.dags_test("mljobs_retry")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = [r for r in _runs(test_airflow.engine(), "airflow-tests") if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_retry"]
    by_name = {r.data.tags[T.JOB_NAME]: r.data.tags[T.STATUS] for r in runs}
    (first,) = [n for n in by_name if not n.endswith("-try2")]
    assert by_name == {first: "Failed", f"{first}-try2": "Completed"}
    # the first try stored its job's identity without reading the store first (no job of its names existed);
    # the retry read it, saw the job had failed, and stored its own
    output = result.stdout + result.stderr
    assert output.count("nothing to resume, the task state store is not read") == 1
    assert "Prior job in terminal state, resubmitting fresh" in output
    assert json.loads(_stored_identity(test_airflow, "mljobs_retry", "flaky"))["name"] == f"{first}-try2"


def _stored_identity(airflow, dag_id: str, task_id: str) -> str:
    import sqlite3

    db = sqlite3.connect(airflow.root / "airflow" / "airflow.db")
    (value,) = db.execute("select value from task_state_store where dag_id = ? and task_id = ? and key = 'mljobs_job'",
                          (dag_id, task_id)).fetchone()
    return value


def test_the_provider_is_discovered_with_its_connection_type(test_airflow):
    import subprocess

    from tests.airflow.conftest import AIRFLOW

    listed = subprocess.run([AIRFLOW, "providers", "get", "airflow-provider-mljobs", "-o", "json"],
                            env=test_airflow.env, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "airflow-provider-mljobs" in listed.stdout
    hooks = subprocess.run([AIRFLOW, "providers", "hooks", "-o", "json"], env=test_airflow.env, capture_output=True,
                           text=True, timeout=300)
    assert "airflow_mljobs.airflow.hooks.MlflowHook" in hooks.stdout
    links = subprocess.run([AIRFLOW, "providers", "links", "-o", "json"], env=test_airflow.env, capture_output=True,
                           text=True, timeout=300)
    assert "airflow_mljobs.airflow.links.MlflowRunLink" in links.stdout


def test_importing_the_operators_pulls_in_no_heavy_client():
    import subprocess
    import sys

    code = ("import sys; import airflow_mljobs.airflow.operators, airflow_mljobs.airflow.sensors, "
            "airflow_mljobs.airflow.sweep; "
            "heavy = [m for m in ('mlflow', 'docker', 'kubernetes', 'optuna') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_bindings_in_a_job_mapping_survive_jinja(test_airflow):
    result = test_airflow.dags_test("mljobs_bindings_in_a_mapping")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "hello bindings from airflow" in result.stdout + result.stderr


def _links(airflow_home, dag_id: str) -> dict:
    """The MLflow links Airflow's UI shows for the DAG's latest run, as the worker stored them:
    {(task_id, map_index): address}."""
    import sqlite3

    with sqlite3.connect(airflow_home.root / "airflow" / "airflow.db") as db:
        rows = db.execute("select task_id, map_index, value from xcom where key = '_link_MlflowRunLink' and "
                          "dag_run_id = (select max(id) from dag_run where dag_id = ?)", (dag_id,)).fetchall()
    return {(task, index): json.loads(value) for task, index, value in rows}


def _page(ui: str, run) -> str:
    return f"{ui}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"


def test_every_task_links_to_its_mlflow_run_even_a_failed_one(test_airflow, mlflow_server):
    import urllib.request

    from airflow_mljobs.engine import Engine

    result = test_airflow.dags_test("mljobs_links", env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert result.returncode != 0  # the `fail` task fails; the others succeed
    tracker = Engine(home=test_airflow.mljobs_home, tracking_uri=mlflow_server).tracker
    runs = {r.data.tags["mljobs.airflow.task_id"]: r for r in tracker.list_jobs(
        experiment="airflow-links", where={"mljobs.airflow.dag_id": "mljobs_links"})}
    links = _links(test_airflow, "mljobs_links")
    assert links[("train", -1)] == _page(mlflow_server, runs["train"])
    assert links[("fail", -1)] == _page(mlflow_server, runs["fail"])
    parent = runs["tune.start"]
    assert links[("tune.start", -1)] == _page(mlflow_server, parent) == links[("tune.best", -1)]
    trials = tracker.list_jobs(parent_run_id=parent.info.run_id)
    assert len(trials) == 2
    assert sorted(links[("tune.trial", i)] for i in (0, 1)) == sorted(_page(mlflow_server, r) for r in trials)
    with urllib.request.urlopen(links[("train", -1)].split("#")[0], timeout=10) as ui:
        assert ui.status == 200  # the address is the server's UI


def test_the_embedded_store_links_to_the_workspace_server_while_it_runs(test_airflow, tmp_path):
    import subprocess

    from airflow_mljobs.engine import Engine
    from airflow_mljobs.tracking.server import server_status, stop_server

    env = {"MLJOBS_HOME": str(tmp_path)}
    result = test_airflow.dags_test("mljobs_bindings_in_a_mapping", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert _links(test_airflow, "mljobs_bindings_in_a_mapping") == {}  # no UI serves the store: no link stored
    started = subprocess.run([str(Path(sys.executable).parent / "mljobs"), "tracking-server", "start"],
                             env={**test_airflow.env, **env}, capture_output=True, text=True, timeout=300)
    try:
        assert started.returncode == 0, started.stderr
        result = test_airflow.dags_test("mljobs_bindings_in_a_mapping", env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        newest = Engine(home=tmp_path).tracker.list_jobs(experiment="airflow-tests", max_results=1)[0]
        assert _links(test_airflow, "mljobs_bindings_in_a_mapping") == \
            {("greet", -1): _page(server_status(tmp_path)["url"], newest)}
    finally:
        stop_server(tmp_path)


def test_a_deferred_job_past_the_tasks_execution_timeout_is_canceled(test_airflow):
    result = test_airflow.dags_test("mljobs_deferrable_timeout")
    assert result.returncode != 0
    engine = test_airflow.engine()
    (run,) = [r for r in _runs(engine, "airflow-tests")
              if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_deferrable_timeout"]
    assert run.data.tags[T.STATUS] == "Canceled"
    assert run.data.tags[T.REASON] == "killed by Airflow: the task's execution_timeout passed"
    pids = [int(p) for p in (engine.job_dir(run.data.tags[T.JOB_NAME]) / "wd" / "pids").read_text().split()]
    assert len(pids) == 2 and alive(pids) == []


def test_a_name_held_by_another_runs_job_fails_the_task_without_collecting_it(test_airflow, unique):
    name = unique("fixed")
    first = test_airflow.dags_test("mljobs_fixed_name", "-c", json.dumps({"name": name}))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = test_airflow.dags_test("mljobs_fixed_name", "-c", json.dumps({"name": name}))
    assert second.returncode != 0
    output = second.stdout + second.stderr
    assert f"the job name '{name}' is taken by a job of mljobs_fixed_name/" in output
    assert "collecting its result" not in output and output.count("taken by a job of") >= 1
    runs = [r for r in _runs(test_airflow.engine(), "airflow-tests") if r.data.tags.get(T.JOB_NAME, "").startswith(name)]
    assert len(runs) == 1  # the second DAG run started nothing, not even as a retry


def test_inputs_from_xcom_and_overrides_from_a_template_or_a_list(test_airflow):
    result = test_airflow.dags_test("mljobs_arguments", "-c",
                                    json.dumps({"overrides": {"environment_variables.VERSION": "1.10"}}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "hello xcom version 1.10" in output  # a string that looks like a number stays what it was
    assert "hello yaml version 2.10" in output


def test_an_input_the_job_does_not_declare_fails_the_task_without_retries(test_airflow):
    result = test_airflow.dags_test("mljobs_input_typo")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "inputs['woh']: error: inputs.woh: the job declares no input 'woh' (it declares: who)" in output
    assert "did you mean 'who'?" in output
    runs = [r for r in _runs(test_airflow.engine(), "airflow-arguments")
            if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_input_typo"]
    assert runs == []  # nothing ran, and no retry either
    assert output.count("the job declares no input 'woh'") <= 2  # one try (its error, as logged and as raised)


def test_a_connection_named_but_not_defined_fails_instead_of_recording_elsewhere(test_airflow):
    result = test_airflow.dags_test("mljobs_connection_typo")
    assert result.returncode != 0
    assert "the MLflow connection 'prod_mlfow' is not defined" in result.stdout + result.stderr
    assert [r for r in _runs(test_airflow.engine(), "airflow-arguments")
            if r.data.tags.get("mljobs.airflow.dag_id") == "mljobs_connection_typo"] == []


def test_a_job_written_in_the_dag_file_is_recorded_in_the_dags_experiment(test_airflow):
    result = test_airflow.dags_test("mljobs_dag_experiment")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = _runs(test_airflow.engine(), "mljobs_dag_experiment")
    assert run.data.tags["mljobs.airflow.dag_id"] == "mljobs_dag_experiment"
