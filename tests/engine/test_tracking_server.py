"""The shared setup: an `mlflow server` with proxied artifacts instead of the embedded store."""

from __future__ import annotations

import os

import pytest

from airflow_mljobs.engine import Engine

pytestmark = pytest.mark.slow


def test_jobs_record_into_a_tracking_server(mlflow_server, project, unique, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    engine = Engine(home=tmp_path / "ws")
    assert engine.config.tracking_uri == mlflow_server and not engine.config.embedded
    path = project("""
        command: >-
          python -c "import mlflow; mlflow.log_metric('score', 0.75)" &&
          mkdir -p outputs && echo kept > outputs/kept.txt
    """)
    name = unique("served")
    result = engine.wait(engine.submit(engine.load(path), name=name))
    assert result.status == "Completed" and result.metrics == {"score": 0.75}
    assert not (tmp_path / "ws" / "mlflow.db").exists()  # nothing went to an embedded store
    engine.download(name, tmp_path / "down")
    assert (tmp_path / "down" / "artifacts" / "outputs" / "kept.txt").read_text() == "kept\n"
    other = Engine(home=tmp_path / "elsewhere", tracking_uri=mlflow_server)
    assert other.show(name)["status"] == "Completed"  # any machine pointing at the server sees the job


def test_cli_commands_use_the_workspace_server_while_the_engine_writes_the_store(project, unique, tmp_path,
                                                                                  monkeypatch):
    """A one-shot command skips loading the SQLite store when the workspace's server runs; a long-lived engine
    writes the store itself; both see the same jobs."""
    import json
    import subprocess
    import sys

    from airflow_mljobs.tracking.server import server_url, stop_server

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    engine = Engine(home=home)
    url = server_url(engine.config)
    try:
        assert Engine(home=home, prefer_server=True).tracker.uri == url
        assert engine.tracker.uri == engine.config.tracking_uri and url.startswith("http://127.0.0.1:")
        name = unique("direct")
        assert engine.wait(engine.submit(engine.load(project("command: echo direct\n")), name=name)).status == "Completed"
        shown = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "show", "-n", name, "-o", "json"],
                               capture_output=True, text=True, env={**os.environ, "MLJOBS_HOME": str(home)}, check=True)
        assert json.loads(shown.stdout)["status"] == "Completed"
    finally:
        stop_server(home)


def test_a_started_workspace_server_spares_commands_the_mlflow_import(project, unique, tmp_path, monkeypatch):
    """`mljobs tracking-server start`, then a job: the command records through the server and never imports
    MLflow; `status` and `stop` see the same server."""
    import subprocess
    import sys

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**os.environ, "MLJOBS_HOME": str(tmp_path / "ws")}
    cli = [sys.executable, "-m", "airflow_mljobs.cli"]
    started = subprocess.run(cli + ["tracking-server", "start"], capture_output=True, text=True, env=env)
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("http://127.0.0.1:")
        assert url in subprocess.run(cli + ["tracking-server", "status"], capture_output=True, text=True, env=env).stdout
        import psutil

        from airflow_mljobs.tracking.server import server_status

        tree = psutil.Process(server_status(tmp_path / "ws")["pid"]).children(recursive=True)
        assert tree and not [p.cmdline() for p in tree if "huey" in " ".join(p.cmdline())]  # no GenAI job runner
        name = unique("served")
        ran = subprocess.run([sys.executable, "-X", "importtime"] + cli[1:] + ["job", "create", "-f",
                             str(project("command: echo hello world\n")), "--name", name, "--stream"],
                             capture_output=True, text=True, env=env)
        assert ran.returncode == 0 and "hello world" in ran.stdout, ran.stderr[-2000:]
        imported = {line.split("|")[-1].strip() for line in ran.stderr.splitlines() if line.startswith("import time:")}
        assert "airflow_mljobs.tracking.rest" in imported and "mlflow" not in imported
        assert Engine(home=tmp_path / "ws").show(name)["status"] == "Completed"  # the store itself has it
    finally:
        stopped = subprocess.run(cli + ["tracking-server", "stop"], capture_output=True, text=True, env=env)
    assert stopped.stdout.strip() == "stopped"
    assert "not running" in subprocess.run(cli + ["tracking-server", "status"], capture_output=True, text=True,
                                           env=env).stdout
    refused = subprocess.run(cli + ["tracking-server", "start"], capture_output=True, text=True,
                             env={**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert refused.returncode == 1 and "embedded store only" in refused.stderr and "Traceback" not in refused.stderr


def test_a_container_job_in_an_unusable_workspace_is_a_clear_error(project, tmp_path, monkeypatch):
    """A one-shot command starts the workspace's server first for a container job: a workspace it cannot write
    is a clear error, before any folder or container is made."""
    from airflow_mljobs.spec import SubmitError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    engine = Engine(home=blocker / "ws", prefer_server=True)
    document = engine.load(project("command: echo\nenvironment: {image: python:3.11-slim}\ncompute: docker\n"))
    with pytest.raises(SubmitError, match="cannot start the workspace's tracking server in .*not-a-folder/ws: "
                                          ".*Not a directory"):
        engine.submit(document, name="blocked")


def test_a_server_that_went_away_is_started_again_for_the_next_job(tmp_path, monkeypatch):
    """A process asks the workspace's server for its health once; after that, for the next jobs, it checks only
    that the same server process still lives. A server stopped (or killed) meanwhile is started anew."""
    import psutil

    from airflow_mljobs.tracking.server import server_status, server_url, stop_server
    from airflow_mljobs.tracking.store import resolve_tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = resolve_tracking(tmp_path / "ws", None)
    try:
        first = server_url(config)
        assert server_url(config) == first  # the same server, alive
        pid = server_status(tmp_path / "ws")["pid"]
        os.killpg(pid, 9)  # the server and its workers
        psutil.Process(pid).wait(10)
        second = server_url(config)
        assert server_status(tmp_path / "ws")["pid"] != pid
        import urllib.request

        with urllib.request.urlopen(f"{second}/health", timeout=5) as answer:  # the new one serves
            assert answer.status == 200
    finally:
        stop_server(tmp_path / "ws")
