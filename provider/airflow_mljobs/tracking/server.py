"""A tracking server on loopback in front of the embedded store, for job processes that cannot open it.

Containers see neither the host's SQLite file nor, with `mlflow-skinny`, a database driver; they speak HTTP.
The first job that needs it starts `mlflow server` on 127.0.0.1 over the workspace's `mlflow.db` (one worker:
one writer for SQLite), and later jobs reuse it while it lives. `mljobs tracking-server stop` ends it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..processes import is_running, start_time
from ..spec import SubmitError
from .store import TrackingConfig

START_SECONDS = float(os.environ.get("MLJOBS_SERVER_START_SECONDS", "180"))
# MLflow's server also starts a runner for its own server-side jobs (GenAI evaluations and the like): several
# large processes, most of the server's start-up, that a job record never uses
SERVER_SETTINGS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def server_url(config: TrackingConfig) -> str:
    """A tracking URI that job processes outside this host's file system can use."""
    if not config.embedded:
        return config.tracking_uri
    state_file = config.home / "tracking-server.json"
    try:
        config.home.mkdir(parents=True, exist_ok=True)
        lock = open(config.home / "tracking-server.lock", "w")
    except OSError as exc:
        raise SubmitError(f"cannot start the workspace's tracking server in {config.home}: {exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read(state_file)
        if state and _alive(state):
            return state["url"]
        state = _start(config)  # healthy once it returns, so answered
        state_file.write_text(json.dumps(state))
        return state["url"]


def stop_server(home: Path) -> bool:
    state_file = home / "tracking-server.json"
    state = _read(state_file)
    if not state:
        return False
    if _same_process(state):
        try:
            os.killpg(state["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + 20
        while time.time() < deadline and _same_process(state):
            time.sleep(0.1)
        if _same_process(state):
            os.killpg(state["pid"], signal.SIGKILL)
    state_file.unlink(missing_ok=True)
    return True


def server_status(home: Path) -> dict | None:
    state = _read(home / "tracking-server.json")
    return state if state and _alive(state) else None


def _start(config: TrackingConfig) -> dict:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    artifacts = config.home / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    mlflow = Path(sys.executable).parent / "mlflow"
    log = open(config.home / "tracking-server.log", "ab")
    process = subprocess.Popen(
        # the store made (or migrated) whole first, under the workspace's lock, by the server's own process (see
        # `serve`): MLflow's server would do it in place, and the command that starts it need not load MLflow
        [sys.executable, "-m", "airflow_mljobs.tracking.serve", str(config.database), config.artifact_root or "",
         str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", config.tracking_uri, "--default-artifact-root", artifacts.as_uri()],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **SERVER_SETTINGS},
    )
    state = {"pid": process.pid, "create_time": start_time(process.pid),
             "url": f"http://127.0.0.1:{port}"}
    deadline = time.time() + START_SECONDS
    while time.time() < deadline:
        if process.poll() is not None:
            break
        if _healthy(state):
            return state
        time.sleep(0.2)
    process.kill()
    tail = (config.home / "tracking-server.log").read_text(errors="replace").splitlines()[-10:]
    raise SubmitError("the tracking server for container jobs did not start:\n" + "\n".join(tail))


# The servers (pid, start time, URL) that answered a health check in this process: while that same process
# lives, a job need not ask again (an HTTP round trip per job)
_ANSWERED: set[tuple] = set()


def _key(state: dict) -> tuple:
    return state["pid"], state["create_time"], state["url"]


def _alive(state: dict) -> bool:
    """The server answers: it did in this process and the same process still runs, or it answers now."""
    return _key(state) in _ANSWERED and _same_process(state) or _healthy(state)


def _healthy(state: dict) -> bool:
    if not _same_process(state):
        return False
    try:
        with urllib.request.urlopen(f"{state['url']}/health", timeout=2) as response:
            healthy = response.status == 200
    except OSError:
        return False
    if healthy:
        _ANSWERED.add(_key(state))
    return healthy


def _same_process(state: dict) -> bool:
    return is_running(state["pid"], state["create_time"])


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
