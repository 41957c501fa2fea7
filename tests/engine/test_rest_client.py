"""The record's REST client against a real `mlflow server`: what it writes, MLflow's own client reads back the
same; a one-shot command that records through a server never imports MLflow."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from mlflow.tracking import MlflowClient

from airflow_mljobs.engine import Engine
from airflow_mljobs.tracking import rest
from airflow_mljobs.tracking.rest import KeyValue, Metric, RestClient, RestError

pytestmark = pytest.mark.slow


def test_what_the_rest_client_writes_mlflow_reads_the_same(mlflow_server, unique, tmp_path):
    ours, theirs = RestClient(mlflow_server), MlflowClient(tracking_uri=mlflow_server)
    experiment = ours.create_experiment(unique("rest"))
    assert ours.get_experiment_by_name(theirs.get_experiment(experiment).name).experiment_id == experiment
    assert ours.get_experiment_by_name(unique("absent")) is None
    run = ours.create_run(experiment, tags={"team": "vision", "mljobs.status": "Preparing"}, run_name="first")
    ours.log_batch(run.info.run_id, params=[KeyValue("lr", "0.1"), KeyValue("layers", 3)],
                   tags=[KeyValue("mljobs.status", "Running")])
    for step, value in enumerate([0.5, 0.25, 0.125]):
        ours.log_metric(run.info.run_id, "loss", value, step=step)
    ours.log_batch(run.info.run_id, metrics=[Metric("acc", 0.9, 1700000000000, 4)])
    ours.set_terminated(run.info.run_id, "FAILED", end_time=1700000005000)

    mine, reference = ours.get_run(run.info.run_id), theirs.get_run(run.info.run_id)
    for field in ("run_id", "experiment_id", "run_name", "status", "start_time", "end_time", "artifact_uri"):
        assert getattr(mine.info, field) == getattr(reference.info, field), field
    assert mine.info.status == "FAILED" and mine.info.end_time == 1700000005000
    assert mine.data.params == reference.data.params == {"lr": "0.1", "layers": "3"}
    assert mine.data.metrics == reference.data.metrics == {"loss": 0.125, "acc": 0.9}
    assert mine.data.tags == reference.data.tags and mine.data.tags["mljobs.status"] == "Running"
    assert [(m.step, m.value) for m in ours.get_metric_history(run.info.run_id, "loss")] == [(0, 0.5), (1, 0.25), (2, 0.125)]


def test_searches_page_through_everything_they_match(mlflow_server, unique, monkeypatch):
    monkeypatch.setattr(rest, "PAGE", 2)  # pages of two, so that five runs take three pages
    client = RestClient(mlflow_server)
    experiment = client.create_experiment(unique("pages"))
    made = {client.create_run(experiment, tags={"batch": "b"}).info.run_id for _ in range(5)}
    client.create_run(experiment, tags={"batch": "other"})
    found = client.search_runs([experiment], "tags.batch = 'b'", max_results=100, order_by=["attributes.start_time DESC"])
    assert {r.info.run_id for r in found} == made
    assert len(client.search_runs([experiment], "", max_results=3)) == 3
    assert len(client.search_experiments()) >= 2 and len(client.search_experiments(max_results=1)) == 1


def test_a_store_error_is_the_servers_own_words(mlflow_server):
    with pytest.raises(RestError) as raised:
        RestClient(mlflow_server).get_run("0" * 32)
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST" and "0" * 32 in str(raised.value)


def test_a_job_on_a_tracking_server_records_through_rest_and_its_files_land_in_proxied_artifacts(
        mlflow_server, project, unique, tmp_path):
    engine = Engine(home=tmp_path / "ws", tracking_uri=mlflow_server)
    assert isinstance(engine.tracker.client, RestClient)
    path = project("""
        command: >-
          mkdir -p "outputs/a folder/inner" && echo deep > "outputs/a folder/inner/x y.txt" &&
          echo top > outputs/top.csv && echo said
    """)
    name = unique("proxied")
    result = engine.wait(engine.submit(engine.load(path), name=name))
    assert result.status == "Completed"
    run = MlflowClient(tracking_uri=mlflow_server).get_run(result.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # the server stores files; the engine PUT them
    assert run.info.status == "FINISHED" and run.data.tags["mljobs.status"] == "Completed"
    engine.download(name, tmp_path / "down")
    outputs = tmp_path / "down" / "artifacts" / "outputs"
    assert (outputs / "a folder" / "inner" / "x y.txt").read_text() == "deep\n"
    assert (outputs / "top.csv").read_text() == "top\n"
    assert "said" in (tmp_path / "down" / "artifacts" / "user_logs" / "std_log.txt").read_text()


def test_a_command_that_records_through_a_server_never_imports_mlflow(mlflow_server, project, unique, tmp_path):
    path = project("command: echo hello world\n")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "airflow_mljobs.cli", "job", "create", "-f", str(path),
         "--name", unique("lean"), "--stream"],
        capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server,
                                              "MLJOBS_HOME": str(tmp_path / "ws")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "hello world" in result.stdout and "Completed" in result.stdout
    assert f"Web View: {mlflow_server}/#/experiments/" in result.stdout  # the run's page in the server's UI
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "airflow_mljobs.tracking.rest" in imported
    assert not {m for m in imported if m == "mlflow" or m.startswith("mlflow.")}


def test_mlflow_settings_this_client_cannot_honour_hand_the_store_to_mlflows_client(monkeypatch, tmp_path):
    assert rest.speaks("http://127.0.0.1:5000") and rest.speaks("https://mlflow.example.org/prefix")
    assert not rest.speaks(f"sqlite:///{tmp_path}/mlflow.db") and not rest.speaks("databricks")
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "my_auth_plugin")
    assert not rest.speaks("http://127.0.0.1:5000")


def test_a_run_page_never_carries_credentials_and_a_store_without_a_ui_has_none(tmp_path):
    from airflow_mljobs.tracking.store import TrackingConfig, resolve_tracking
    from airflow_mljobs.tracking.web import run_page

    def page(uri):
        return run_page(TrackingConfig(tmp_path, uri, None), "3", "abc")

    assert page("http://me:s3cret@127.0.0.1:5000/") == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert page("https://mlflow.example.org/team/") == "https://mlflow.example.org/team/#/experiments/3/runs/abc"
    assert page(f"sqlite:///{tmp_path}/mlflow.db") is None and page("databricks") is None
    assert run_page(resolve_tracking(tmp_path / "ws"), "3", "abc") is None  # embedded, and no server runs


@pytest.fixture
def flaky_server():
    """A loopback server that answers 503 a set number of times, then a fixed JSON body; it keeps the headers."""
    state = {"failures": 0, "headers": [], "answer": {"experiments": [{"experiment_id": "7", "name": "seven"}]},
             "status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state["headers"].append(dict(self.headers))
            if state["failures"] > 0:
                state["failures"] -= 1
                self.send_error(503, "busy")
                return
            body = json.dumps(state["answer"]).encode() if state["status"] == 200 else b"<html>gateway</html>"
            self.send_response(state["status"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_a_busy_server_is_asked_again_and_credentials_go_with_every_request(flaky_server, monkeypatch):
    monkeypatch.setattr(rest.time, "sleep", lambda seconds: None)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret")
    flaky_server["failures"] = 2
    found = RestClient(flaky_server["url"]).search_experiments()
    assert [(e.experiment_id, e.name) for e in found] == [("7", "seven")]
    assert len(flaky_server["headers"]) == 3
    assert all(h["Authorization"] == "Bearer s3cret" for h in flaky_server["headers"])


def test_a_server_that_keeps_failing_is_reported_with_what_it_said(flaky_server, monkeypatch):
    monkeypatch.setattr(rest.time, "sleep", lambda seconds: None)
    flaky_server["status"] = 400
    with pytest.raises(RestError, match="answered 400 to POST /api/2.0/mlflow/experiments/search: <html>gateway"):
        RestClient(flaky_server["url"]).search_experiments()
    flaky_server["failures"] = 99
    with pytest.raises(RestError) as raised:
        RestClient(flaky_server["url"]).search_experiments()
    assert raised.value.status == 503 and len(flaky_server["headers"]) == 1 + rest.RETRIES


def test_a_tracking_server_that_is_not_there_is_a_clear_error_and_leaves_no_job(project, tmp_path, monkeypatch):
    import socket

    from airflow_mljobs.spec import SubmitError

    monkeypatch.setattr(rest.time, "sleep", lambda seconds: None)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = Engine(home=tmp_path / "ws", tracking_uri=f"http://127.0.0.1:{port}")
    with pytest.raises(SubmitError, match=f"cannot open the MLflow tracking store http://127.0.0.1:{port}: "
                                          f"cannot reach the MLflow tracking server .*refused"):
        engine.submit(engine.load(project("command: echo\n")), name="nowhere")
    assert not (tmp_path / "ws" / "jobs" / "nowhere").exists()
