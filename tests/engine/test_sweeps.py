"""Sweep jobs from the engine: real trials, a real MLflow store, parent and child runs, policies at work."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from airflow_mljobs.sweeps import SweepRunner
from airflow_mljobs.tracking import tags as T
from tests.helpers import JOBS

CURVE = """
import argparse, time
import mlflow
parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float)
parser.add_argument("--epochs", type=int, default=6)
args = parser.parse_args()
for epoch in range(1, args.epochs + 1):
    mlflow.log_metric("score", args.quality * epoch / args.epochs, step=epoch)
    time.sleep(0.4)
"""


def sweep_file(project, policy="", algorithm="{type: random, seed: 5}", space=None, total=4, concurrency=2,
               command="python curve.py --quality ${{search_space.quality}}"):
    space = space or "quality: {type: choice, values: [0.1, 0.9, 0.5, 0.95]}"
    return project(f"""
        type: sweep
        trial:
          command: {command}
          code: src
        sampling_algorithm: {algorithm}
        search_space:
          {space}
        objective: {{goal: maximize, primary_metric: score}}
        limits: {{max_total_trials: {total}, max_concurrent_trials: {concurrency}}}
        {policy}
    """, {"src/curve.py": CURVE}, name="sweep.yml")


def children(engine, result):
    return engine.tracker.list_jobs(parent_run_id=result.run_id, max_results=100)


@pytest.fixture(params=["embedded store", "tracking server"])
def any_store(request, engine, tmp_path):
    """The workspace's embedded store, or an `mlflow server` recorded through MLflow's REST API."""
    if request.param == "embedded store":
        return engine
    from airflow_mljobs.engine import Engine
    from airflow_mljobs.tracking.rest import RestClient

    served = Engine(home=tmp_path / "ws", tracking_uri=request.getfixturevalue("mlflow_server"))
    assert isinstance(served.tracker.client, RestClient)
    return served


def test_parent_and_child_runs_and_the_best_trial(any_store, project, unique):
    engine = any_store
    name = unique("sweep")
    lines = []
    result = SweepRunner(engine, engine.load(sweep_file(project, algorithm="grid")), name=name).run(write=lines.append)
    assert result.status == "Completed"
    runs = children(engine, result)
    assert sorted(r.data.tags[T.JOB_NAME] for r in runs) == [f"{name}_{i}" for i in range(4)]
    assert all(r.data.tags["mlflow.parentRunId"] == result.run_id for r in runs)
    assert sorted(float(r.data.params["quality"]) for r in runs) == [0.1, 0.5, 0.9, 0.95]  # the grid, exactly
    parent = engine.tracker.client.get_run(result.run_id)
    best_run = engine.tracker.client.get_run(parent.data.tags["best_child_run_id"])
    assert best_run.data.params["quality"] == "0.95"
    assert parent.data.metrics["best_score"] == pytest.approx(0.95)
    assert parent.data.params["best.quality"] == "0.95"
    assert parent.data.tags[T.JOB_TYPE] == "sweep" and parent.data.tags[T.STATUS] == "Completed"
    record = engine.tracker.record(parent)
    assert set(record.artifacts("sweep")) == {"sweep/trials.csv", "sweep/objective.png", "sweep/hyperparameters.png"}
    downloaded = engine.tracker.client.download_artifacts(result.run_id, "sweep/trials.csv", str(engine.home / "dl"))
    table = list(csv.DictReader(io.StringIO(open(downloaded).read())))
    assert len(table) == 4 and {row["status"] for row in table} == {"Completed"}
    assert result.best["params"] == {"quality": 0.95}
    assert any("[trial 0] started" in line for line in lines)
    experiment = engine.tracker.client.get_experiment(result.experiment_id).name
    assert [j["name"] for j in engine.list(experiment=experiment) if j["type"] == "sweep"][0] == name
    target = engine.home / f"download-{name}"
    engine.download(name, target)  # the best trial's files; the sweep's own under hd-artifacts/
    assert (target / "artifacts" / "user_logs" / "std_log.txt").is_file()
    assert (target / "hd-artifacts" / "sweep" / "trials.csv").is_file()


def test_median_stopping_cancels_poor_trials_and_the_sweep_goes_on(any_store, project, unique):
    engine = any_store
    path = sweep_file(project, policy="early_termination: {type: median_stopping, evaluation_interval: 1, delay_evaluation: 2}",
                      algorithm="grid", concurrency=4)
    result = SweepRunner(engine, engine.load(path), name=unique("median")).run()
    assert result.status == "Completed"
    by_quality = {float(r.data.params["quality"]): r for r in children(engine, result)}
    stopped = by_quality[0.1]
    assert stopped.data.tags[T.STATUS] == "Canceled"
    assert "median stopping policy" in stopped.data.tags["mljobs.early_termination"]
    assert "median stopping policy" in stopped.data.tags[T.REASON]
    assert by_quality[0.95].data.tags[T.STATUS] == "Completed"
    assert result.best["params"] == {"quality": 0.95}


def test_a_trial_that_never_logs_the_primary_metric_is_reported(engine, project, unique, tmp_path):
    path = sweep_file(project, command="python -c \"import mlflow; mlflow.log_metric('other', 1)\" # ${{search_space.quality}}",
                      total=2)
    lines = []
    name = unique("silent")
    result = SweepRunner(engine, engine.load(path), name=name).run(write=lines.append)
    engine.download(name, tmp_path / "down")  # no best trial: the sweep's own files all the same
    assert (tmp_path / "down" / "hd-artifacts" / "sweep" / "trials.csv").is_file()
    text = "".join(lines)
    assert "never logged the primary metric 'score'; it logged: other" in text
    parent = engine.tracker.client.get_run(result.run_id)
    assert parent.data.tags["mljobs.sweep.no_primary_metric"] == "0,1"
    assert result.status == "Completed" and result.best is None


def test_seed_2021_sweep_runs_unchanged_on_local(engine, unique):
    document = engine.load(JOBS / "seed-2021-05" / "job-sweep.yml", ["max_total_trials=3"])
    result = SweepRunner(engine, document, name=unique("seed-sweep")).run()
    assert result.status == "Completed"
    runs = children(engine, result)
    assert len(runs) == 3 and all("test-multi_logloss" in r.data.metrics for r in runs)
    assert {"learning_rate", "boosting"} <= set(runs[0].data.params)
    assert result.best["value"] == min(r.data.metrics["test-multi_logloss"] for r in runs)  # goal: minimize


def test_cli_sweep_stream_and_list_children(project, unique, workspace):
    path = sweep_file(project, total=2)
    env = {**os.environ, "MLJOBS_HOME": str(workspace)}
    env.pop("MLFLOW_TRACKING_URI", None)
    name = unique("cli-sweep")
    result = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(path), "--name", name,
                             "--stream"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Best trial:" in result.stdout and "progress: trials 2/2: 2 done" in result.stderr
    listed = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "list", "--include-children", "-o", "json"],
                            capture_output=True, text=True, env=env, timeout=120)
    names = {item["name"] for item in json.loads(listed.stdout)}
    assert {name, f"{name}_0", f"{name}_1"} <= names


def test_ctrl_c_during_a_streamed_cli_sweep_cancels_it_and_its_trials(project, unique, workspace):
    """Ctrl-C while `create --stream` runs a sweep: the running trials are stopped (no process left), the sweep
    and those trials are recorded as Canceled, and the command exits 2 without a traceback."""
    import signal
    import time

    import psutil

    from airflow_mljobs.engine import Engine

    path = sweep_file(project, total=4, concurrency=2, command="python curve.py --quality ${{search_space.quality}} "
                      "--epochs 200")
    env = {**os.environ, "MLJOBS_HOME": str(workspace)}
    env.pop("MLFLOW_TRACKING_URI", None)
    name = unique("cli-sweep-interrupted")
    cli = subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(path), "--name",
                            name, "--stream"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = 0
        for line in cli.stdout:
            started += "started" in line
            if started == 2:
                break
        assert started == 2, "both concurrent trials started"
        trial_pids = [p.pid for p in psutil.Process(cli.pid).children(recursive=True)]
        time.sleep(1)  # the trials are logging their curves
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=120)
    finally:
        cli.kill()
    assert cli.returncode == 2, out[-2000:] + err[-2000:]
    assert "interrupted: the sweep and its running trials were canceled" in err and "Traceback" not in err
    engine = Engine(home=workspace)
    assert engine.show(name)["status"] == "Canceled"
    trials = engine.tracker.list_jobs(parent_run_id=engine.tracker.find_job(name).info.run_id, max_results=10)
    assert sorted(t.data.tags[T.STATUS] for t in trials) == ["Canceled", "Canceled"]
    assert [pid for pid in trial_pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []


def test_bayesian_sweep_learns_from_the_history_recorded_in_mlflow(engine, project, unique):
    path = sweep_file(project, algorithm="{type: bayesian, seed: 3}", total=14, concurrency=4,
                      command="python -c \"import mlflow; mlflow.log_metric('score', -(${{search_space.x}} - 0.7) ** 2)\"",
                      space="x: {type: uniform, min_value: 0, max_value: 1}")
    result = SweepRunner(engine, engine.load(path), name=unique("bayes")).run()
    assert result.status == "Completed"
    runs = sorted(children(engine, result), key=lambda r: int(r.data.tags["mljobs.sweep.trial"]))
    assert len(runs) == 14 and all(r.data.tags[T.STATUS] == "Completed" for r in runs)
    late = [abs(float(r.data.params["x"]) - 0.7) for r in runs[10:]]  # suggested by the Gaussian process
    assert min(late) < 0.05 and abs(result.best["params"]["x"] - 0.7) < 0.05
    for wave in range(4, 14, 4):  # in waves of max_concurrent_trials: each starts once the one before has ended
        ended = max(r.info.end_time for r in runs[:wave])
        assert all(r.info.start_time >= ended for r in runs[wave:wave + 4])


def test_bayesian_without_pytorch_is_refused_before_any_trial(engine, project, unique, monkeypatch):
    from airflow_mljobs.spec import SubmitError
    from airflow_mljobs.sweeps import Sweep

    monkeypatch.setitem(sys.modules, "torch", None)  # as on a machine without the `bayesian` extra
    document = engine.load(sweep_file(project, algorithm="{type: bayesian}"))
    with pytest.raises(SubmitError, match=r"sweep\.yml:\d+:\d+: error: sampling_algorithm: bayesian sampling .* needs PyTorch: "
                                          r"pip install 'airflow-provider-mljobs\[bayesian\]'"):
        Sweep(engine, document, name=unique("no-torch"))


def test_the_parent_run_is_opened_once_and_reused_only_when_asked(engine, project, unique):
    from airflow_mljobs.spec import SubmitError
    from airflow_mljobs.sweeps import Sweep

    sweep = Sweep(engine, engine.load(sweep_file(project)), name=unique("parent"))
    first = sweep.open_parent()
    assert sweep.open_parent(reuse=True).run_id == first.run_id  # a retried start task finds the same parent
    with pytest.raises(SubmitError, match="exists already"):
        sweep.open_parent()


def test_a_trial_past_its_trial_timeout_is_canceled_and_the_sweep_goes_on(engine, project, unique):
    path = sweep_file(project, total=2, concurrency=2, command="sleep 60 # ${{search_space.quality}}")
    document = engine.load(path, ["limits.trial_timeout=2"])
    lines = []
    result = SweepRunner(engine, document, name=unique("trial-timeout")).run(write=lines.append)
    trials = children(engine, result)
    assert [t.data.tags[T.STATUS] for t in trials] == ["Canceled", "Canceled"]
    assert all(t.data.tags[T.REASON] == "timed out after limits.timeout of 2 s" for t in trials)
    assert all((t.info.end_time - t.info.start_time) / 1000 < 30 for t in trials)
    assert result.status == "Failed" and result.reason == "no trial completed"


def test_a_sweep_past_its_timeout_is_canceled_with_its_reason_and_exit_2(project, unique, workspace):
    path = sweep_file(project, total=3, concurrency=1, command="sleep 60 # ${{search_space.quality}}")
    env = {**os.environ, "MLJOBS_HOME": str(workspace)}
    env.pop("MLFLOW_TRACKING_URI", None)
    name = unique("sweep-timeout")
    result = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(path), "--name", name,
                             "--set", "limits.timeout=2", "--stream"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Status: Canceled" in result.stdout and "Reason: the sweep reached limits.timeout of 2 s" in result.stdout
    from airflow_mljobs.engine import Engine

    engine = Engine(home=workspace)
    (trial,) = engine.tracker.list_jobs(parent_run_id=engine.tracker.find_job(name).info.run_id, max_results=10)
    assert trial.data.tags[T.STATUS] == "Canceled"


def _cli(workspace, *args, timeout=300):
    env = {**os.environ, "MLJOBS_HOME": str(workspace)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_a_background_sweep_is_followed_by_stream_and_its_name_is_taken(project, unique, workspace):
    path = sweep_file(project, total=2)
    name = unique("bg-sweep")
    started = _cli(workspace, "job", "create", "-f", str(path), "--name", name)
    assert started.returncode == 0 and started.stdout.strip() == name, started.stderr
    followed = _cli(workspace, "job", "stream", "-n", name)
    assert followed.returncode == 0, followed.stdout[-2000:] + followed.stderr[-2000:]
    assert f"[trial 0] {name}_0: Completed" in followed.stdout and "Status: Completed" in followed.stdout
    assert "Best params:" in followed.stdout and "best_score" in followed.stdout
    again = _cli(workspace, "job", "create", "-f", str(path), "--name", name)
    assert again.returncode == 1 and f"a job named '{name}' exists already" in again.stderr
    command = project("command: echo same name\n", name="same.yml")
    clash = _cli(workspace, "job", "create", "-f", str(command), "--name", name, "--stream")
    assert clash.returncode == 1 and "already ran" in clash.stderr  # the sweep's folder claims its name


def test_cancel_stops_a_background_sweep_and_its_trials(project, unique, workspace):
    import time

    import psutil

    from airflow_mljobs.engine import Engine

    path = sweep_file(project, total=4, concurrency=2, command="python curve.py --quality ${{search_space.quality}} "
                      "--epochs 300")
    name = unique("bg-cancel")
    assert _cli(workspace, "job", "create", "-f", str(path), "--name", name).returncode == 0
    engine = Engine(home=workspace)
    deadline = time.time() + 60
    while time.time() < deadline:
        parent = engine.tracker.find_job(name)
        trials = engine.tracker.list_jobs(parent_run_id=parent.info.run_id, max_results=10) if parent else []
        if len(trials) == 2 and all(t.data.tags[T.STATUS] == "Running" for t in trials):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the sweep's two trials did not start")
    pids = [int(p) for t in trials for p in [engine.attach(t.data.tags[T.JOB_NAME]).handle.ranks[0].pid]]
    canceled = _cli(workspace, "job", "cancel", "-n", name)
    assert canceled.returncode == 0 and canceled.stdout.strip() == f"{name}: Canceled", canceled.stderr
    assert engine.show(name)["failure_reason"] == "canceled by user"
    trials = engine.tracker.list_jobs(parent_run_id=parent.info.run_id, max_results=10)
    assert sorted(t.data.tags[T.STATUS] for t in trials) == ["Canceled", "Canceled"]
    assert [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []


def test_a_background_sweep_whose_trials_cannot_start_is_refused_before_it_is_recorded(project, unique, workspace):
    path = sweep_file(project, total=2)
    name = unique("bg-refused")
    refused = _cli(workspace, "job", "create", "-f", str(path), "--name", name, "--set", "trial.code=nowhere")
    assert refused.returncode == 2 and "error: trial.code:" in refused.stderr and "nowhere does not exist" in refused.stderr
    assert "Traceback" not in refused.stderr
    from airflow_mljobs.engine import Engine

    assert Engine(home=workspace).tracker.find_job(name) is None


def test_an_unseeded_sweep_draws_its_own_trials_and_records_its_seed(engine, project, unique):
    path = sweep_file(project, algorithm="{type: random}", space="quality: {type: uniform, min_value: 0, max_value: 1}")
    document = engine.load(path)
    first, second = (SweepRunner(engine, document, name=unique("unseeded")) for _ in range(2))
    draws = [[r.sampler.suggest(document.model.search_space, (), i) for i in range(3)] for r in (first, second)]
    assert draws[0] != draws[1]
    again = SweepRunner(engine, document, name=first.name)  # another trial task of the same sweep agrees
    assert [again.sampler.suggest(document.model.search_space, (), i) for i in range(3)] == draws[0]
    seeded = engine.load(path, ["sampling_algorithm.seed=7"])
    assert SweepRunner(engine, seeded, name=unique("a")).seed == SweepRunner(engine, seeded, name=unique("b")).seed == 7
