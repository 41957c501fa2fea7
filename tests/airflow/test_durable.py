"""Durable and deferrable CommandJobOperator against a real Airflow, a real Docker engine and real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

from airflow_mljobs.tracking import tags as T
from tests.airflow.conftest import AIRFLOW
from tests.docker.conftest import build_containers_left, docker_engine, job_containers  # noqa: F401  (the Docker fixture)

pytestmark = pytest.mark.slow


def _runs(engine, experiment, dag_id):
    return [r for r in engine.tracker.list_jobs(experiment=experiment, max_results=100)
            if r.data.tags.get("mljobs.airflow.dag_id") == dag_id]


def _wait_for(predicate, seconds=180, what="the condition"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting for {what}")


def _crash_then_retry(airflow, dag_id, started):
    """Run the DAG, kill the whole `airflow dags test` process while the job runs, then run the task again in
    the same DAG run (`airflow tasks test <dag> <task> <run_id>`), as a retry on another worker would: it
    succeeds and returns the job's result (its XCom) as a first try does."""
    first = subprocess.Popen([AIRFLOW, "dags", "test", dag_id], env=airflow.env, cwd=airflow.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    name, run_id = _wait_for(started, what="the job to start")
    os.killpg(first.pid, signal.SIGKILL)  # the worker dies; the job does not
    first.wait()
    engine = airflow.engine()
    go = engine.job_dir(name) / "wd" / "go"
    retry = subprocess.Popen([AIRFLOW, "tasks", "test", dag_id, "train", run_id], env=airflow.env, cwd=airflow.root,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(8)
    go.write_text("")  # let the job finish once the retry is watching it
    output, _ = retry.communicate(timeout=600)
    # `tasks test` exits with 0 whatever the task did: its state and its XCom are in the log
    assert "new_state=success" in output and "Pushing xcom" in output, output[-4000:]
    return name, retry.returncode, output


def test_docker_worker_crash_then_retry_reattaches_and_never_starts_a_second(test_airflow, docker_engine):
    since = int(time.time()) - 1
    label = "mljobs.airflow.dag_id=mljobs_docker_crash"

    def started():
        running = docker_engine.containers.list(filters={"label": label})
        return (running[0].labels["mljobs.job"], running[0].labels["mljobs.airflow.run_id"]) if running else None

    name, code, output = _crash_then_retry(test_airflow, "mljobs_docker_crash", started)
    assert code == 0, output[-4000:]
    assert "reattached to job" in output or "attached to the running job" in output
    created = list(docker_engine.events(since=since, until=int(time.time()) + 1, decode=True,
                                        filters={"type": "container", "event": "create", "label": label}))
    assert len(created) == 1, created
    runs = _runs(test_airflow.engine(), "airflow-crash", "mljobs_docker_crash")
    assert [(r.data.tags[T.JOB_NAME], r.data.tags[T.STATUS]) for r in runs] == [(name, "Completed")]
    assert docker_engine.containers.list(all=True, filters={"label": label}) == []


def test_local_worker_crash_then_retry_reattaches_by_pid(test_airflow):
    engine = test_airflow.engine()

    def started():
        runs = _runs(engine, "airflow-crash", "mljobs_local_crash") if engine.tracker.client.get_experiment_by_name("airflow-crash") else []
        running = [r for r in runs if r.data.tags.get(T.STATUS) == "Running"]
        tags = running[0].data.tags if running else None
        return (tags[T.JOB_NAME], tags["mljobs.airflow.run_id"]) if tags else None

    name, code, output = _crash_then_retry(test_airflow, "mljobs_local_crash", started)
    assert code == 0, output[-4000:]
    # through the task state store, or (killed before the store was written) by the job's name
    assert "reattached to job" in output or "attached to the running job" in output
    runs = _runs(engine, "airflow-crash", "mljobs_local_crash")
    assert [(r.data.tags[T.JOB_NAME], r.data.tags[T.STATUS]) for r in runs] == [(name, "Completed")]
    assert "finished" in (engine.job_dir(name) / "user_logs" / "std_log.txt").read_text()


def _slow_build_job(folder, experiment: str):
    """A job whose image build takes two minutes, and the token its build step echoes (to find the build by)."""
    import uuid

    token = f"slow-build-{uuid.uuid4().hex[:10]}"
    (folder / "ctx").mkdir()
    (folder / "ctx" / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN echo {token} && sleep 120\n")
    job = folder / "job.yml"
    job.write_text("command: echo never\nenvironment: {build: {path: ctx}}\ncompute: docker\n"
                   f"experiment_name: {experiment}\n")
    return token, job


def test_a_worker_killed_while_the_image_builds_leaves_a_lost_job_that_the_retry_records(test_airflow, docker_engine,
                                                                                       tmp_path):
    """The worker dies during the job's image build: nothing of the job ever ran. The retry finds the job lost,
    records it Failed with the build's log, and never attaches to it: a later try starts a job of its own (`tasks
    test` runs the first try again, whose name the lost job holds, so it stops there, saying why)."""
    import json

    token, job = _slow_build_job(tmp_path, "airflow-crash-while-building")
    dag_id, engine = "mljobs_crash_while_building", test_airflow.engine()
    first = subprocess.Popen([AIRFLOW, "dags", "test", dag_id, "-c", json.dumps({"job": str(job)})], env=test_airflow.env,
                             cwd=test_airflow.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)

    def building():
        runs = _runs(engine, "airflow-crash-while-building", dag_id) \
            if engine.tracker.client.get_experiment_by_name("airflow-crash-while-building") else []
        log = engine.job_dir(runs[0].data.tags[T.JOB_NAME]) / "user_logs" / "image_build.txt" if runs else None
        return runs[0].data.tags if log and log.is_file() and token in log.read_text() else None

    tags = _wait_for(building, what="the image build")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    retry = subprocess.run([AIRFLOW, "tasks", "test", dag_id, "build", tags["mljobs.airflow.run_id"]], env=test_airflow.env,
                           cwd=test_airflow.root, capture_output=True, text=True, timeout=600)
    output = retry.stdout + retry.stderr
    assert f"job '{tags[T.JOB_NAME]}' was lost: the process that submitted it" in output, output[-4000:]
    assert f"a job named '{tags[T.JOB_NAME]}' already ran (Failed)" in output, output[-4000:]
    (run,) = _runs(engine, "airflow-crash-while-building", dag_id)
    assert run.data.tags[T.STATUS] == "Failed" and run.data.tags[T.REASON].startswith("lost: ")
    assert engine.tracker.record(run).artifacts("user_logs") == ["user_logs/image_build.txt"]
    assert job_containers(docker_engine, tags[T.JOB_NAME]) == []
    assert build_containers_left(docker_engine, token) == []


def test_deferrable_job_waits_in_the_trigger(test_airflow, docker_engine):
    result = test_airflow.dags_test("mljobs_deferrable")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    output = result.stdout + result.stderr
    lines = output.splitlines()
    job_lines = [i for i, line in enumerate(lines) if line.split("]", 1)[-1].strip().startswith(("from a deferred job", "its last line"))]
    assert len(job_lines) == 2, output[-4000:]  # each line of the job's log once in the task log
    ended = next(i for i, line in enumerate(lines) if "Trigger completed" in line)
    # written by the trigger as the job ran, before it ended (not copied in when the task resumed)
    assert all(i < ended and "triggers.JobTrigger" in lines[i] for i in job_lines), "\n".join(lines[i] for i in job_lines)
    assert "deferred until job" in output and "mljobs job stream -n" in output  # and where else to follow it
    (run,) = _runs(test_airflow.engine(), "airflow-deferrable", "mljobs_deferrable")
    assert run.data.tags[T.STATUS] == "Completed" and run.data.metrics["m"] == 3


def test_a_task_timeout_during_the_image_build_cancels_the_job_and_the_build(test_airflow, docker_engine, tmp_path):
    """The task's execution_timeout strikes while the job's image builds: the build stops, the job is recorded
    as Canceled before it started, and nothing of the job or of its build is left."""
    import json

    token, job = _slow_build_job(tmp_path, "airflow-timeout-while-building")
    started = time.time()
    result = test_airflow.dags_test("mljobs_timeout_while_building", "-c", json.dumps({"job": str(job)}))
    assert result.returncode != 0
    assert time.time() - started < 110, "the build did not outlast the task"
    engine = test_airflow.engine()
    (run,) = engine.tracker.list_jobs("airflow-timeout-while-building")
    assert run.data.tags[T.STATUS] == "Canceled", result.stdout[-3000:]
    assert run.data.tags[T.REASON] == "interrupted while preparing"
    assert job_containers(docker_engine, run.data.tags[T.JOB_NAME]) == []
    assert build_containers_left(docker_engine, token) == []


def test_trigger_on_kill_stops_the_container_and_records_the_end(docker_engine, tmp_path, monkeypatch):
    """A deferred task marked failed: no task resumes, so the trigger's `on_kill` stops the job, records it as
    Canceled and removes its container."""
    from airflow_mljobs.airflow.triggers import JobTrigger
    from airflow_mljobs.engine import Engine

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    engine = Engine(home=tmp_path)
    job = tmp_path / "job.yml"
    job.write_text("command: sleep 300\nenvironment: {image: python:3.11-slim}\ncompute: docker\n")
    submission = engine.submit(engine.load(job), name="killed-while-deferred")
    trigger = JobTrigger(submission.to_dict(), str(tmp_path), None, 0.2)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_mljobs.airflow.triggers.JobTrigger"
    revived = JobTrigger(**kwargs)
    assert len(job_containers(docker_engine, "killed-while-deferred")) == 1

    async def wait_then_kill():
        events = revived.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(1)
        assert not waiting.done()  # still running: the trigger is waiting
        await revived.on_kill()
        return await asyncio.wait_for(waiting, 60)

    event = asyncio.run(wait_then_kill())
    assert event.payload["status"] == "Canceled"
    assert job_containers(docker_engine, "killed-while-deferred") == []  # removed by on_kill itself
    shown = engine.show("killed-while-deferred")
    assert shown["status"] == "Canceled" and shown["failure_reason"] == "killed by Airflow"
    assert engine.finalize(engine.attach("killed-while-deferred")).status == "Canceled"  # recorded once, read back
    from airflow_mljobs.tracking.server import stop_server

    stop_server(tmp_path)


def test_lightgbm_example_dag_runs_on_local_and_in_docker(example_airflow, docker_engine):
    result = example_airflow.dags_test("lightgbm_iris")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    runs = example_airflow.engine().tracker.list_jobs(experiment="lightgbm-iris-airflow")
    backends = sorted(r.data.tags[T.BACKEND] for r in runs)
    assert backends == ["docker", "local"]
    assert all("test-multi_logloss" in r.data.metrics for r in runs)
    from airflow_mljobs.tracking.server import stop_server

    stop_server(example_airflow.mljobs_home)


def test_docker_connection_names_the_engine(test_airflow, docker_engine):
    import json

    env = {**test_airflow.env,
           "AIRFLOW_CONN_DOCKER_ENGINE": json.dumps({"conn_type": "docker", "host": "unix:///var/run/docker.sock"})}
    result = subprocess.run([AIRFLOW, "dags", "test", "mljobs_docker_connection"], env=env, capture_output=True,
                            text=True, timeout=600, cwd=test_airflow.root)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    engine = test_airflow.engine()
    (run,) = _runs(engine, "airflow-docker-connection", "mljobs_docker_connection")
    handle = json.loads((engine.job_dir(run.data.tags[T.JOB_NAME]) / "handle.json").read_text())["handle"]
    assert handle["docker_url"] == "unix:///var/run/docker.sock"
    assert "on the engine of the connection" in (result.stdout + result.stderr)
