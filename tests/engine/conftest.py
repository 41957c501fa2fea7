"""Real parts for engine tests: a workspace with an embedded MLflow store, a loopback HTTP server."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import psutil
import pytest

from airflow_mljobs.engine import Engine


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture
def engine(workspace, monkeypatch) -> Engine:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLJOBS_HOME", str(workspace))
    return Engine(home=workspace)


@pytest.fixture
def unique():
    return lambda prefix="job": f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def project(tmp_path):
    """Write a job YAML (and files beside it) into a fresh project folder; returns the YAML's path."""

    def write(yaml_text: str, files: dict[str, str] | None = None, name: str = "job.yml") -> Path:
        for relative, content in (files or {}).items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content))
        job = tmp_path / name
        job.write_text(textwrap.dedent(yaml_text).lstrip("\n"))
        return job

    return write


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def http_files():
    """Serve `files` (path -> bytes) on 127.0.0.1; `fail_first[path]` answers 503 that many times first;
    a path in `truncated` announces twice its length and stops half way."""
    state = {"files": {}, "fail_first": {}, "hits": [], "truncated": set()}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        def do_GET(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            state["hits"].append(path)
            if state["fail_first"].get(path, 0) > 0:
                state["fail_first"][path] -= 1
                self.send_error(503, "try again")
                return
            body = state["files"].get(path)
            if body is None:
                self.send_error(404, "no such file")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * (2 if path in state["truncated"] else 1)))
            self.end_headers()
            self.wfile.write(body)  # a truncated file's connection closes before its announced length

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def alive(pids) -> list[int]:
    """The pids that still name a running (not zombie) process."""
    living = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback with proxied artifacts, as a team would share one."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts")],
        stdout=open(folder / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # no runner for MLflow's GenAI jobs
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        server.kill()
        raise RuntimeError("mlflow server did not start:\n" + (folder / "server.log").read_text()[-3000:])
    yield url
    import signal

    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.fixture
def mljobs(workspace, monkeypatch):
    """The `mljobs` CLI on the workspace: `mljobs(*args)` runs a command to its end, `mljobs.start(*args)` starts
    one in a session of its own (its output on stdout), for a test to signal or kill."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**os.environ, "MLJOBS_HOME": str(workspace)}

    def call(*args, timeout=120):
        return subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", *args], capture_output=True, text=True,
                              env=env, timeout=timeout)

    def start(*args):
        return subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)

    call.start = start
    return call

