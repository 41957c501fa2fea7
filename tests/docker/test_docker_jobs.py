"""Command jobs on the Docker backend, against a real Docker engine and a real MLflow store."""

from __future__ import annotations

import os
import re
import time

import pytest

from airflow_mljobs.backends.docker_args import parse_docker_args
from airflow_mljobs.engine import Engine
from airflow_mljobs.spec import JobLost, NotRunnable, SpecError, SubmitError
from airflow_mljobs.tracking import tags as T
from tests.docker.conftest import build_containers_left, job_containers
from tests.helpers import JOBS

pytestmark = pytest.mark.slow


def run(engine, path, name, overrides=(), **kwargs):
    lines = []
    submission = engine.submit(engine.load(path, list(overrides)), name=name, log=lines.append, **kwargs)
    outcome = engine.follow(submission, lines.append)
    return engine.finalize(submission, outcome), "".join(lines)


def test_seed_lightgbm_job_runs_in_docker_and_on_local_unchanged(docker_engine, engine, unique):
    job = JOBS / "seed-2021-05" / "job.yml"
    name = unique("lgbm-docker")
    result, log = run(engine, job, name, ["compute=docker"])
    assert result.status == "Completed", log[-3000:]
    assert "test-multi_logloss" in result.metrics
    client = engine.tracker.client
    models = client.search_logged_models(experiment_ids=[result.experiment_id],
                                         filter_string=f"source_run_id = '{result.run_id}'")
    assert models, "autolog recorded the model"
    tags = client.get_run(result.run_id).data.tags
    assert tags[T.BACKEND] == "docker" and tags[T.STATUS] == "Completed"
    assert job_containers(docker_engine, name) == []  # removed once finished
    local, local_log = run(engine, job, unique("lgbm-local"))
    assert local.status == "Completed", local_log[-3000:]
    assert "test-multi_logloss" in local.metrics


def test_the_seed_job_runs_in_docker_from_the_cli_recording_through_the_workspace_server(docker_engine, tmp_path,
                                                                                          unique):
    """`mljobs job create --set compute=docker --stream`, as a user types it, in a fresh workspace: the command
    starts the workspace's server (the container needs it) before it opens the store, records through it without
    importing MLflow, and the container's own `mlflow` logs land in the same run."""
    import subprocess
    import sys

    from airflow_mljobs.tracking.server import server_status, stop_server

    home = tmp_path / "fresh"
    name = unique("lgbm-cli")
    try:
        ran = subprocess.run([sys.executable, "-X", "importtime", "-m", "airflow_mljobs.cli", "job", "create",
                              "-f", str(JOBS / "seed-2021-05" / "job.yml"), "--set", "compute=docker", "--name", name,
                              "--stream"], capture_output=True, text=True, timeout=1800,
                             env={**os.environ, "MLJOBS_HOME": str(home)})
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert "Status: Completed" in ran.stdout
        imported = {line.split("|")[-1].strip() for line in ran.stderr.splitlines() if line.startswith("import time:")}
        assert "airflow_mljobs.tracking.rest" in imported and "mlflow" not in imported
        assert server_status(home) is not None  # left running for the next commands, as documented
        shown = Engine(home=home).show(name)
        assert shown["status"] == "Completed" and shown["compute"] == "docker"
        assert "test-multi_logloss" in shown["metrics"]  # logged by autolog inside the container
        assert job_containers(docker_engine, name) == []
    finally:
        stop_server(home)


WAIT_FOR_GO = 'while [ ! -f go ]; do sleep 0.1; done; echo "went in run $MLFLOW_RUN_ID"'


def test_a_job_found_again_is_looked_for_on_the_engine_it_was_started_on(docker_engine, engine, project, unique):
    """Settings given over the compute's (an Airflow docker connection's engine) are where a job whose submitter
    died before saving its handle is looked for: here the compute names an engine where nothing listens."""
    from airflow_mljobs import compute

    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    target = unique("nowhere")
    compute.register(project(f"""
        name: {target}
        type: docker
        docker_url: tcp://127.0.0.1:9
    """, name="compute.yml"), engine.home)
    try:
        path = project(f"""
            command: {WAIT_FOR_GO}
            environment: {{image: python:3.11-slim}}
            compute: {target}
        """)
        name = unique()
        first = engine.submit(engine.load(path), name=name, compute_settings={"docker_url": where})
        (engine.job_dir(name) / "handle.json").unlink()
        _as_if_its_submitter_died(engine.job_dir(name))
        later = Engine(home=engine.home)
        attached = later.attach(name)
        assert attached.run_id == first.run_id and attached.handle.docker_url == where
        (engine.job_dir(name) / "wd" / "go").write_text("")
        result = later.finalize(attached, later.follow(attached))
        assert result.status == "Completed", result
        assert job_containers(docker_engine, name) == []
    finally:
        compute.unregister(target, engine.home)


_FETCH_RUN_IDENTITY = Engine._run_identity


def _as_if_its_submitter_died(job_dir):
    """Name a process that has ended as the job's submitter (this test's process, which submitted it, lives)."""
    import json
    import subprocess

    from airflow_mljobs.engine import SUBMITTER
    from airflow_mljobs.processes import start_time

    gone = subprocess.Popen(["sleep", "0.2"])
    started = start_time(gone.pid)
    gone.wait()
    (job_dir / SUBMITTER).write_text(json.dumps({"pid": gone.pid, "create_time": started}))


def _submitter_stopped_before_starting(engine, path, name, monkeypatch):
    """Submit in a thread that stops where a container exists and the run's identity is being fetched (the
    submitter dies there); returns the thread's release: it then fails, as a dead submitter would not go on."""
    import threading

    reached, release = threading.Event(), threading.Event()

    def stopped_here(creating, plan, job_dir, compute_settings):
        _FETCH_RUN_IDENTITY(creating, plan, job_dir, compute_settings)
        reached.set()
        release.wait(60)
        raise RuntimeError("the submitter is gone")

    monkeypatch.setattr(Engine, "_run_identity", staticmethod(stopped_here))
    thread = threading.Thread(target=lambda: pytest.raises(SubmitError, engine.submit, engine.load(path), name=name))
    thread.start()
    assert reached.wait(120)
    return lambda: (release.set(), thread.join(60))


def test_containers_of_a_submitter_that_died_before_starting_them(docker_engine, engine, project, unique, monkeypatch):
    """Created, and the run's identity written for them: a later process starts them, as the submitter was
    about to. Created only: the job never started; its containers are removed and attaching says why."""
    from airflow_mljobs.backends.docker import RUN_ENV, _write_run_env

    path = project(f"""
        command: {WAIT_FOR_GO}
        environment: {{image: python:3.11-slim}}
        compute: docker
    """)
    never, about_to = unique("never"), unique("about-to")
    release_never = _submitter_stopped_before_starting(engine, path, never, monkeypatch)
    try:
        assert [c.status for c in job_containers(docker_engine, never)] == ["created"]
        with pytest.raises(SubmitError, match="is still starting"):  # its submitter lives: only slow
            Engine(home=engine.home).attach(never)
        assert [c.status for c in job_containers(docker_engine, never)] == ["created"]
        _as_if_its_submitter_died(engine.job_dir(never))
        with pytest.raises(JobLost, match="died before the job started; it is recorded Failed"):
            Engine(home=engine.home).attach(never)
        assert job_containers(docker_engine, never) == []
        assert engine.find(never).data.tags[T.STATUS] == "Failed"
    finally:
        release_never()
    release_about_to = _submitter_stopped_before_starting(engine, path, about_to, monkeypatch)
    try:
        run_id = engine.find(about_to).info.run_id
        _write_run_env(engine.job_dir(about_to) / RUN_ENV, {"MLFLOW_RUN_ID": run_id})
        _as_if_its_submitter_died(engine.job_dir(about_to))
        later = Engine(home=engine.home)
        attached = later.attach(about_to)
        assert [c.status for c in job_containers(docker_engine, about_to)] == ["running"]
        (engine.job_dir(about_to) / "wd" / "go").write_text("")
        lines = []
        result = later.finalize(attached, later.follow(attached, lines.append))
        assert result.status == "Completed" and f"went in run {run_id}" in "".join(lines)
    finally:
        release_about_to()
    assert job_containers(docker_engine, about_to) == []


def test_a_job_whose_submitter_is_killed_while_its_image_builds_is_lost(docker_engine, engine, project, unique):
    """`mljobs job create` killed while the job's image builds: nothing of the job runs. The next process that
    attaches to it records it Failed (lost, with the build's log), and its name is never attached to again: a
    retry goes on under a name of its own."""
    import signal
    import subprocess
    import sys
    import uuid

    token = f"lost-build-{uuid.uuid4().hex[:10]}"
    path = project("""
        command: echo never
        environment: {build: {path: ctx}}
        compute: docker
    """, files={"ctx/Dockerfile": f"FROM python:3.11-slim\nRUN echo {token} && sleep 120\n"})
    name = unique("lost")
    cli = subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(path), "--name", name],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    build_log = engine.job_dir(name) / "user_logs" / "image_build.txt"
    deadline = time.time() + 120
    while not (build_log.is_file() and token in build_log.read_text() and engine.find(name)):
        assert time.time() < deadline and cli.poll() is None, "the build never started"
        time.sleep(0.2)
    os.killpg(cli.pid, signal.SIGKILL)
    cli.wait()
    with pytest.raises(JobLost, match=rf"job '{name}' was lost: the process that submitted it \(pid {cli.pid}\) died "
                                      r"before the job started; it is recorded Failed"):
        Engine(home=engine.home).attach(name)
    run = engine.find(name)
    assert (run.data.tags[T.STATUS], run.data.tags[T.REASON]) == (
        "Failed", f"lost: the process that submitted it (pid {cli.pid}) died before the job started")
    assert engine.tracker.record(run).artifacts("user_logs") == ["user_logs/image_build.txt"]
    with pytest.raises(NotRunnable, match=rf"a job named '{name}' already ran \(Failed\)"):
        engine.submit(engine.load(path), name=name)
    assert job_containers(docker_engine, name) == []
    assert build_containers_left(docker_engine, token) == []


def test_an_image_removed_after_a_job_used_it_is_looked_for_again(docker_engine, engine, project, unique):
    """A process checks an image once; a later job's container that cannot be created for want of it pulls it
    again, as `docker run` does (here from a registry on loopback that is not there: a clear error)."""
    tag = f"127.0.0.1:1/{unique('gone')}:1"
    docker_engine.images.get("python:3.11-slim").tag(tag)
    path = project(f"""
        command: echo ok
        environment: {{image: "{tag}"}}
        compute: docker
    """)
    try:
        result, log = run(engine, path, unique())
        assert result.status == "Completed", log
        docker_engine.images.remove(tag)
        name = unique()
        with pytest.raises(SubmitError, match=f"image {re.escape(tag)} is not on this Docker engine and cannot be pulled"):
            run(engine, path, name)
        assert job_containers(docker_engine, name) == []
        assert "pulling" in (engine.job_dir(name) / "user_logs" / "image_build.txt").read_text()
    finally:
        if any(tag in image.tags for image in docker_engine.images.list()):
            docker_engine.images.remove(tag)


def test_the_users_telemetry_opt_out_follows_the_job_into_its_container(docker_engine, engine, project, unique,
                                                                          monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("MLJOBS_NOT_FORWARDED", "x")
    path = project("""
        command: echo "opt-outs $MLFLOW_DISABLE_TELEMETRY $DO_NOT_TRACK ${MLJOBS_NOT_FORWARDED:-unset}"
        environment: {image: python:3.11-slim}
        compute: docker
    """)
    result, log = run(engine, path, unique())
    assert result.status == "Completed", log
    assert "opt-outs true 1 unset" in log


def test_inputs_mounted_read_only_or_copied(docker_engine, engine, project, unique, http_files):
    http_files["files"]["/table.csv"] = b"a,b\n"
    path = project(f"""
        command: >-
          cat ${{{{inputs.data}}}}/x.txt && cat ${{{{inputs.url}}}} &&
          (touch ${{{{inputs.data}}}}/new 2>/dev/null && echo WRITABLE || echo read-only) &&
          touch ${{{{inputs.copy}}}}/new && echo copy-writable
        environment: {{image: python:3.11-slim}}
        inputs:
          data: {{type: uri_folder, path: data}}
          copy: {{type: uri_folder, path: data, mode: download}}
          url: {{type: uri_file, path: "{http_files['url']}/table.csv"}}
        compute: docker
    """, {"data/x.txt": "payload"})
    result, log = run(engine, path, unique())
    assert result.status == "Completed", log
    assert "payload" in log and "a,b" in log and "read-only" in log and "copy-writable" in log
    assert "WRITABLE" not in log


def test_container_settings_from_resources(docker_engine, engine, project, unique):
    path = project("""
        command: df -k /dev/shm | tail -1 && cat /proc/self/status | grep -i '^CapEff' && sleep 2
        environment: {image: python:3.11-slim}
        resources:
          shm_size: 256m
          docker_args: --ipc=private --ulimit nofile=1024:2048 -e EXTRA=yes
        compute: docker
    """)
    name = unique()
    submission = engine.submit(engine.load(path), name=name)
    (container,) = job_containers(docker_engine, name)
    host = container.attrs["HostConfig"]
    assert host["ShmSize"] == 256 * 1024 * 1024 and host["IpcMode"] == "private" and host["Privileged"] is False
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert "EXTRA=yes" in container.attrs["Config"]["Env"]
    assert container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    labels = container.labels
    assert labels["mljobs.job"] == name and labels["mljobs.rank"] == "0"
    result = engine.finalize(submission, engine.follow(submission))
    assert result.status == "Completed"


@pytest.mark.parametrize("args, message", [
    ("--privileged", "--privileged is refused"),
    ("--pid=host", "--pid is refused"),
    ("-v /:/host", "-v is refused"),
    ("--cap-add SYS_ADMIN", "--cap-add SYS_ADMIN is refused"),
    ("--frobnicate", "is not supported"),
])
def test_dangerous_docker_args_are_refused_before_anything_starts(docker_engine, engine, project, unique, args, message):
    path = project(f"command: echo\nenvironment: {{image: python:3.11-slim}}\nresources: {{docker_args: '{args}'}}\ncompute: docker\n")
    name = unique()
    with pytest.raises(SpecError, match=r"job.yml:3:\d+: error: resources.docker_args: .*" + re.escape(message)):
        engine.submit(engine.load(path), name=name)
    assert job_containers(docker_engine, name) == []


def test_gpu_requests():
    (request,) = parse_docker_args(["--gpus", "2"])["device_requests"]
    assert request["Count"] == 2 and request["Capabilities"] == [["gpu"]]
    assert parse_docker_args(["--gpus=device=0,1"])["device_requests"][0]["DeviceIDs"] == ["0", "1"]


def test_a_container_that_never_started_is_not_taken_for_one_that_ended_well(docker_engine, tmp_path, unique):
    """Docker's wait says exit code 0 at once for a container that was created but never started (a watcher
    that died between the two): a handle attached to it must not report the job Completed."""
    from airflow_mljobs.backends.docker import Container, DockerHandle

    name = unique()
    created = docker_engine.containers.create("python:3.11-slim", ["true"], name=f"{name}-0",
                                              labels={"mljobs.job": name})
    try:
        handle = DockerHandle(str(tmp_path), [Container(0, created.id, created.name, "std_log.txt")], time.time())
        assert handle.poll(wait=0.2) is None  # still to start: not Completed
        created.start()
        created.wait(timeout=30)
        assert handle.poll(wait=0.2).status == "Completed"
    finally:
        created.remove(force=True)


def test_build_context_is_built_once(docker_engine, engine, project, unique):
    token = unique("context")  # a context no earlier run has built
    path = project("""
        command: cat /opt/greeting
        environment:
          build: {path: ctx, dockerfile_path: Dockerfile.custom}
        compute: docker
    """, {"ctx/Dockerfile.custom": "FROM python:3.11-slim\nCOPY greeting /opt/greeting\n", "ctx/greeting": f"built here {token}\n"})
    first, log = run(engine, path, unique())
    assert first.status == "Completed" and f"built here {token}" in log and "building mljobs-build:" in log
    second, log = run(engine, path, unique())
    assert second.status == "Completed" and "is built already" in log


def test_failed_build_is_a_clear_error(docker_engine, engine, project, unique):
    path = project("""
        command: echo
        environment: {build: {path: ctx}}
        compute: docker
    """, {"ctx/Dockerfile": "FROM python:3.11-slim\nRUN echo about to fail && exit 42\n"})
    name = unique()
    with pytest.raises(SubmitError, match="the image build failed") as info:
        engine.submit(engine.load(path), name=name)
    assert "about to fail" in str(info.value)
    assert engine.show(name)["status"] == "Failed"


def test_ctrl_c_during_the_image_build_cancels_the_job_and_leaves_nothing_running(docker_engine, project, unique,
                                                                                   tmp_path):
    """Ctrl-C while `create --stream` builds the image: the build stops, the job is recorded as Canceled before it
    started, the command exits 2 without a traceback, and no container of the job or of its build is left."""
    import signal
    import subprocess
    import sys

    from airflow_mljobs.tracking.server import stop_server

    token = unique("slow-build")
    path = project("""
        command: echo never
        environment: {build: {path: ctx}}
        compute: docker
    """, {"ctx/Dockerfile": f"FROM python:3.11-slim\nRUN echo {token} && sleep 60\n"})
    home, name = tmp_path / "home", unique()
    cli = subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(path), "--name",
                            name, "--stream"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "MLJOBS_HOME": str(home)})
    try:
        seen = []
        for line in cli.stdout:  # the build's own output, streamed as it runs
            seen.append(line)
            if line.startswith(token):
                break
        assert any(line.startswith(token) for line in seen), "".join(seen)
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 2, out + err
        assert "interrupted: the job was canceled before it started" in err and "Traceback" not in err
        shown = Engine(home=home).show(name)
        assert shown["status"] == "Canceled" and shown["failure_reason"] == "interrupted while preparing"
        assert job_containers(docker_engine, name) == []
        assert build_containers_left(docker_engine, token) == []
    finally:
        cli.kill()
        stop_server(home)


def test_curated_environment_names_resolve_through_the_table(docker_engine, engine, project, unique):
    known = project("command: python -c 'import sklearn, mlflow; print(\"ok\", sklearn.__version__)'\n"
                    "environment: azureml:AzureML-sklearn-1.5@latest\ncompute: docker\n")
    result, log = run(engine, known, unique())
    assert result.status == "Completed" and "ok " in log
    unknown = project("command: echo\nenvironment: azureml:My-Team-Env:3\ncompute: docker\n", name="u.yml")
    with pytest.raises(SpecError, match="u.yml:2:14: error: environment: .*add an entry 'My-Team-Env:'"):
        engine.submit(engine.load(unknown), name=unique())


def test_a_sweep_runs_its_trials_in_docker(docker_engine, engine, project, unique):
    from airflow_mljobs.sweeps import SweepRunner

    path = project("""
        type: sweep
        trial:
          command: python3 -c "import mlflow; mlflow.log_metric('score', ${{search_space.x}})"
          environment:
            image: python:3.11-slim
            conda_file: {dependencies: [{pip: [mlflow-skinny]}]}
        compute: docker
        sampling_algorithm: grid
        search_space: {x: {type: choice, values: [1, 3]}}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 2, max_concurrent_trials: 2}
    """, name="sweep.yml")
    name = unique("docker-sweep")
    result = SweepRunner(engine, engine.load(path), name=name).run()
    assert result.status == "Completed" and result.best["params"] == {"x": 3} and result.best["value"] == 3
    children = engine.tracker.list_jobs(parent_run_id=result.run_id)
    assert {r.data.tags[T.BACKEND] for r in children} == {"docker"}
    assert job_containers(docker_engine, f"{name}_0") == [] and job_containers(docker_engine, f"{name}_1") == []
