"""Sweep jobs as mapped task instances under a real Airflow, then a retrain with the best parameters."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from airflow_mljobs.tracking import tags as T
from tests.airflow.conftest import AIRFLOW
from tests.docker.conftest import docker_engine  # noqa: F401  (the Docker fixture)

pytestmark = pytest.mark.slow


def test_every_trial_is_a_named_task_instance_and_the_best_feeds_the_retrain(example_airflow):
    result = example_airflow.dags_test("iris_sweep", "-c", json.dumps({"trials": 4}))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    db = sqlite3.connect(example_airflow.root / "airflow" / "airflow.db")
    rows = db.execute("select map_index, rendered_map_index, state from task_instance "
                      "where dag_id = 'iris_sweep' and task_id = 'tune.trial' order by map_index").fetchall()
    assert [r[0] for r in rows] == [0, 1, 2, 3] and {r[2] for r in rows} == {"success"}
    assert all("learning_rate=" in r[1] and "n_estimators=" in r[1] for r in rows)  # named by hyperparameters
    engine = example_airflow.engine()
    runs = engine.tracker.list_jobs(experiment="iris-sweep-airflow", max_results=100, include_children=True)
    (parent,) = [r for r in runs if r.data.tags.get(T.JOB_TYPE) == "sweep"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 4 and all(r.data.tags[T.STATUS] == "Completed" for r in trials)
    best = engine.tracker.client.get_run(parent.data.tags["best_child_run_id"])
    assert best.data.metrics["test_accuracy"] == max(r.data.metrics["test_accuracy"] for r in trials)
    (retrain,) = [r for r in runs if r.data.tags.get("mljobs.airflow.task_id") == "retrain"]
    assert retrain.data.params["inputs.n_estimators"] == best.data.params["n_estimators"]
    assert retrain.data.params["inputs.learning_rate"] == best.data.params["learning_rate"]


def test_a_mistake_in_the_sweep_fails_without_retry(test_airflow):
    result = test_airflow.dags_test("mljobs_bad_sweep")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "the job is invalid" in output and "unknown key 'primary_metrc'" in output


def test_the_policy_stops_a_poor_trial_and_its_task_still_succeeds(test_airflow):
    result = test_airflow.dag_test_in_fixed_order("mljobs_sweep_policy", "2026-01-01T00:00:00")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "median stopping policy" in result.stdout + result.stderr  # said in the trial's task log
    engine = test_airflow.engine()
    runs = engine.tracker.list_jobs(experiment="airflow-sweep-policy", max_results=100, include_children=True)
    trials = {r.data.params["quality"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert _started_in_order(trials, "0.9", "0.95", "0.1")  # the poor trial has history to be compared with
    assert trials["0.1"].data.tags[T.STATUS] == "Canceled"
    assert "median stopping policy" in trials["0.1"].data.tags["mljobs.early_termination"]
    assert trials["0.95"].data.tags[T.STATUS] == "Completed"
    db = sqlite3.connect(test_airflow.root / "airflow" / "airflow.db")
    states = {row[0] for row in db.execute("select state from task_instance where dag_id = 'mljobs_sweep_policy' "
                                           "and task_id = 'tune.trial'")}
    assert states == {"success"}


def test_a_sweep_from_a_dag_runs_its_trials_in_docker_and_stops_the_poor_one(test_airflow, docker_engine):
    result = test_airflow.dag_test_in_fixed_order("mljobs_docker_sweep", "2026-01-01T00:00:00")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    runs = test_airflow.engine().tracker.list_jobs(experiment="airflow-docker-sweep", max_results=100,
                                                   include_children=True)
    trials = {r.data.params["quality"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert {r.data.tags[T.BACKEND] for r in trials.values()} == {"docker"}
    assert _started_in_order(trials, "0.9", "0.95", "0.1")
    assert trials["0.1"].data.tags[T.STATUS] == "Canceled"  # stopped inside its container by the policy
    assert "median stopping policy" in trials["0.1"].data.tags["mljobs.early_termination"]
    assert trials["0.95"].data.tags[T.STATUS] == "Completed" and trials["0.95"].data.metrics["score"] > 0.9
    (parent,) = [r for r in runs if r.data.tags.get(T.JOB_TYPE) == "sweep"]
    assert parent.data.tags["best_child_run_id"] == trials["0.95"].info.run_id
    label = "mljobs.airflow.dag_id=mljobs_docker_sweep"
    assert docker_engine.containers.list(all=True, filters={"label": label}) == []
    from airflow_mljobs.tracking.server import stop_server

    stop_server(test_airflow.mljobs_home)


def _started_in_order(trials: dict, *qualities: str) -> bool:
    starts = [trials[q].info.start_time for q in qualities]
    return starts == sorted(starts)


def test_a_bayesian_trial_waits_while_the_wave_before_it_runs(test_airflow):
    """Two workers at once: while a first-wave trial runs under `dag.test()`, a second-wave trial run by another
    process (`airflow tasks test`, as a second worker would) is rescheduled and starts no job; the second wave
    starts once the first has ended."""
    from airflow_mljobs.sweeps import TRIAL_TAG

    engine = test_airflow.engine()
    dag_id = "mljobs_bayesian_waves"

    def trials():
        if engine.tracker.client.get_experiment_by_name("airflow-waves") is None:
            return []
        runs = engine.tracker.list_jobs(experiment="airflow-waves", max_results=100, include_children=True)
        return [r for r in runs if TRIAL_TAG in r.data.tags]

    with open(test_airflow.root / "waves.log", "w") as log:
        first = subprocess.Popen(test_airflow.fixed_order_command(dag_id, "2026-02-01T00:00:00"), cwd=test_airflow.root,
                                 env={**test_airflow.env, "PYTHONHASHSEED": "0"}, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        deadline = time.time() + 300
        while not trials() and time.time() < deadline:
            time.sleep(0.3)
        (running,) = trials()  # waiting for its `go` file
        index, run_id = int(running.data.tags[TRIAL_TAG]), running.data.tags["mljobs.airflow.run_id"]
        assert index in (0, 1), f"trial {index} ran first: this test needs a first-wave trial running"
        later = 3 - index  # of the second wave, and not started
        second = subprocess.run([AIRFLOW, "tasks", "test", dag_id, "tune.trial", run_id, "--map-index", str(later)],
                                env=test_airflow.env, cwd=test_airflow.root, capture_output=True, text=True, timeout=300)
        assert f"trial {later} waits for the earlier wave" in second.stdout + second.stderr, second.stdout[-3000:]
        assert [int(r.data.tags[TRIAL_TAG]) for r in trials()] == [index]  # the waiting trial started no job
        while first.poll() is None and time.time() < deadline:  # let each trial finish once it runs
            for run in trials():
                if run.data.tags[T.STATUS] == "Running":
                    (engine.job_dir(run.data.tags[T.JOB_NAME]) / "wd" / "go").write_text("")
            time.sleep(0.3)
        assert first.wait(timeout=60) == 0, (test_airflow.root / "waves.log").read_text()[-4000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    by_index = {int(r.data.tags[TRIAL_TAG]): r for r in trials()}
    assert sorted(by_index) == [0, 1, 2, 3] and {r.data.tags[T.STATUS] for r in by_index.values()} == {"Completed"}
    first_wave_end = max(by_index[i].info.end_time for i in (0, 1))
    assert min(by_index[i].info.start_time for i in (2, 3)) >= first_wave_end


def test_a_retried_trial_runs_again_as_a_new_job_with_the_same_parameters(test_airflow):
    """A trial whose job failed is retried by Airflow (retries=1): the retry runs the same point again as
    `<sweep>_<index>-try2`, and the sweep ends with both trials completed."""
    (test_airflow.mljobs_home / "failed-once").unlink(missing_ok=True)
    result = test_airflow.dags_test("mljobs_sweep_retry")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    engine = test_airflow.engine()
    runs = engine.tracker.list_jobs(experiment="airflow-sweep-retry", max_results=100, include_children=True)
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    statuses = sorted((r.data.tags[T.JOB_NAME].rsplit("_", 1)[1], r.data.tags[T.STATUS]) for r in trials)
    (failed,) = [r for r in trials if r.data.tags[T.STATUS] == "Failed"]
    index = failed.data.tags["mljobs.sweep.trial"]
    assert statuses == sorted([(index, "Failed"), (f"{index}-try2", "Completed"), (str(1 - int(index)), "Completed")])
    assert failed.data.tags[T.EXIT_CODE] == "3"
    (again,) = [r for r in trials if r.data.tags[T.JOB_NAME].endswith(f"_{index}-try2")]
    assert again.data.params == failed.data.params and again.data.tags["mljobs.sweep.trial"] == index
    assert again.data.metrics["m"] == float(failed.data.params["x"])
    # the trials record beside their parent run, whatever the worker's own workspace: a trial task run again by
    # a worker whose MLJOBS_HOME and directory differ reads and writes the parent's store, and touches no other
    elsewhere = test_airflow.root / "another-worker"
    elsewhere.mkdir()
    again_task = subprocess.run([AIRFLOW, "tasks", "test", "mljobs_sweep_retry", "tune.trial",
                                 failed.data.tags["mljobs.airflow.run_id"], "--map-index", index],
                                env={**test_airflow.env, "MLJOBS_HOME": str(elsewhere / "mljobs")}, cwd=elsewhere,
                                capture_output=True, text=True, timeout=300)
    assert not (elsewhere / "mljobs").exists() and not (elsewhere / ".mljobs").exists(), again_task.stdout[-3000:]
    after = engine.tracker.list_jobs(experiment="airflow-sweep-retry", max_results=100, include_children=True)
    assert len([r for r in after if "mlflow.parentRunId" in r.data.tags]) == len(trials)


def test_a_sweep_hands_its_store_to_the_trials_but_never_credentials():
    from airflow_mljobs.airflow.sweep import _store_for_trials
    from airflow_mljobs.tracking.store import resolve_tracking

    embedded = resolve_tracking("/srv/ws")
    assert _store_for_trials(embedded, None) == {"home": "/srv/ws", "tracking_uri": None}
    server = resolve_tracking("/srv/ws", "http://127.0.0.1:5000")  # job folders stay each worker's own...
    assert _store_for_trials(server, None) == {"home": None, "tracking_uri": "http://127.0.0.1:5000"}
    assert _store_for_trials(server, "/srv/shared") == {"home": "/srv/shared", "tracking_uri": "http://127.0.0.1:5000"}
    assert _store_for_trials(resolve_tracking("/srv/ws", "http://me:secret@127.0.0.1:5000"), None) is None


def test_a_trial_whose_task_times_out_is_stopped_and_recorded_canceled(test_airflow):
    """A trial task's execution_timeout strikes while its job runs: `on_kill` stops the job's processes and
    records the trial as Canceled (no task goes on to do it)."""
    from tests.engine.conftest import alive

    started = time.time()
    result = test_airflow.dags_test("mljobs_sweep_trial_timeout")
    assert result.returncode != 0
    assert time.time() - started < 120
    engine = test_airflow.engine()
    (trial,) = [run for run in engine.tracker.list_jobs("airflow-sweep-trial-timeout", include_children=True)
                if "mlflow.parentRunId" in run.data.tags]
    assert trial.data.tags[T.STATUS] == "Canceled", (result.stdout + result.stderr)[-3000:]
    assert trial.data.tags[T.REASON] == "killed by Airflow"
    pids = [int(p) for p in (engine.job_dir(trial.data.tags[T.JOB_NAME]) / "wd" / "pids").read_text().split()]
    assert len(pids) == 2 and alive(pids) == []


SMALL = {"type": "sweep", "trial": {"command": "echo ${{search_space.x}}"}, "sampling_algorithm": "random",
         "search_space": {"x": {"type": "choice", "values": [1, 2]}},
         "objective": {"goal": "maximize", "primary_metric": "m"}, "limits": {"max_total_trials": 2, "max_concurrent_trials": 3}}


def test_sweep_job_reads_its_overrides_at_parse_time_and_passes_task_arguments():
    from airflow.sdk import DAG

    from airflow_mljobs.airflow.sweep import sweep_job

    with DAG("parse_time", schedule=None):
        group = sweep_job("tune", job=SMALL, set={"limits.max_concurrent_trials": 1}, compute="local", retries=2,
                          pool="gpu")
    trial = group.children["tune.trial"]
    assert trial.max_active_tis_per_dagrun == 1  # the override, not the YAML's 3
    assert (trial.retries, trial.pool) == (2, "gpu")
    assert all(group.children[f"tune.{t}"].retries == 2 for t in ("start", "best"))
    with pytest.raises(ValueError, match="give max_concurrent_trials="):
        with DAG("templated", schedule=None):
            sweep_job("tune", job="jobs/{{ params.which }}.yml")
    with pytest.raises(ValueError, match="give max_concurrent_trials="):
        with DAG("templated_concurrency", schedule=None):
            sweep_job("tune", job=SMALL, set={"limits.max_concurrent_trials": "{{ params.n }}"})
    with DAG("another_override_templated", schedule=None):
        group = sweep_job("tune", job=SMALL, set={"limits.max_total_trials": "{{ params.n }}"})
    assert group.children["tune.trial"].max_active_tis_per_dagrun == 3  # the YAML's
    with DAG("templated_with_concurrency", schedule=None):
        group = sweep_job("tune", job="jobs/{{ params.which }}.yml", max_concurrent_trials=2)
    assert group.children["tune.trial"].max_active_tis_per_dagrun == 2
