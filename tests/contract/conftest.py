"""The backend contract's subjects: every backend, as a compute of its own name, run through the real Engine.

What the suite must know of a backend beyond the engine is here, one small class each: where its processes see
the job's working directory from this host (to let a waiting job go on), and what of a job is still there once
it has ended (processes, containers, a remote copy). A new backend joins the suite with a class below and its
name in `SUBJECTS`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil
import pytest

from airflow_mljobs.backends.base import BACKENDS
from tests.docker.conftest import docker_engine, job_containers  # noqa: F401  (shared fixtures)
from tests.engine.conftest import engine, project, unique, workspace  # noqa: F401  (shared fixtures)

BACKENDS["sandbox"] = "tests.contract.sandbox_backend:SandboxBackend"

KILL_GRACE_SECONDS = 1  # how long a stop waits before it kills (a command may ignore SIGTERM): short here


class Subject:
    """A backend under test; `compute` is the name a job's `compute:` gives."""

    compute = "local"

    def __init__(self, request) -> None:
        self.request = request

    def workdir(self, engine, name: str) -> Path:
        """The job's working directory (./) on this host, where its processes see it."""
        return engine.job_dir(name) / "wd"

    def leftovers(self, engine, name: str) -> list[str]:
        """What of the job `name` is still there: its processes (found by the job name in their environment,
        wherever they run on this host), and what else the backend made for it."""
        return job_processes(name) + self.made(engine, name)

    def made(self, engine, name: str) -> list[str]:
        """The live processes of the ranks' process groups."""
        return group_members(_handle(engine, name).get("ranks", []))


class Local(Subject):
    compute = "local"


class Docker(Subject):
    compute = "docker"

    def __init__(self, request) -> None:
        super().__init__(request)
        self.client = request.getfixturevalue("docker_engine")  # skips where no engine can be started

    def made(self, engine, name: str) -> list[str]:
        return [f"container {c.name} ({c.status})" for c in job_containers(self.client, name)]


class Sandbox(Subject):
    compute = "sandbox"

    def workdir(self, engine, name: str) -> Path:
        plan = json.loads((engine.job_dir(name) / "plan.json").read_text())
        return Path(plan["root"]) / plan["workdir"]  # the job's root as its processes see it is on this host

    def made(self, engine, name: str) -> list[str]:
        handle = _handle(engine, name)
        remote = [f"remote copy {handle['remote']}"] if handle and Path(handle["remote"]).exists() else []
        return group_members(handle.get("ranks", {}).get("ranks", [])) + remote


SUBJECTS = {"local": Local, "docker": Docker, "sandbox": Sandbox}


@pytest.fixture(params=[
    "local",
    pytest.param("docker", marks=pytest.mark.slow),  # a real engine: slow, and skipped loudly without one
    "sandbox",
])
def backend(request, monkeypatch, tmp_path_factory, engine, workspace):
    """The backend under test; once the test is over, nothing of any job it ran may be left: no process,
    container or remote copy."""
    monkeypatch.setattr("airflow_mljobs.backends.local.KILL_GRACE_SECONDS", KILL_GRACE_SECONDS)
    monkeypatch.setattr("airflow_mljobs.backends.docker.KILL_GRACE_SECONDS", KILL_GRACE_SECONDS)
    monkeypatch.setenv("MLJOBS_SANDBOX_ROOT", str(tmp_path_factory.getbasetemp() / "remote"))
    subject = SUBJECTS[request.param](request)
    jobs = workspace / "jobs"
    before = set(os.listdir(jobs)) if jobs.is_dir() else set()
    yield subject
    names = sorted(set(os.listdir(jobs)) - before) if jobs.is_dir() else []
    deadline = time.time() + 5  # a process killed a moment ago may take that long to be gone
    while left := {name: found for name in names if (found := subject.leftovers(engine, name))}:
        if time.time() > deadline:
            pytest.fail(f"left behind by the jobs of this test: {left}")
        time.sleep(0.1)


@pytest.fixture(scope="session", autouse=True)
def no_tracking_server_left(workspace):
    """Container jobs start a tracking server for the workspace: stopped at the end. (Not the Docker tests'
    `nothing_left_behind`: that removes every job container of the engine, other sessions' too; here each test
    checks its own jobs.)"""
    yield
    from airflow_mljobs.tracking.server import stop_server

    stop_server(workspace)


def job_processes(name: str) -> list[str]:
    """Live processes of this host whose environment names the job (every rank's has AZUREML_RUN_ID)."""
    found = []
    for process in psutil.process_iter(["pid", "name", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and process.environ().get("AZUREML_RUN_ID") == name:
                found.append(f"process {process.info['pid']} ({process.info['name']})")
        except psutil.Error:
            pass
    return found


def group_members(ranks: list[dict]) -> list[str]:
    """Live processes of the ranks' process groups (each rank of a local process runs in a session of its own)."""
    groups = {rank["pid"] for rank in ranks}
    found = []
    for process in psutil.process_iter(["pid", "name", "status"]):
        try:
            group = os.getpgid(process.info["pid"])
            if process.info["status"] != psutil.STATUS_ZOMBIE and group in groups:
                found.append(f"process {process.info['pid']} ({process.info['name']}) of group {group}")
        except (psutil.Error, ProcessLookupError):
            pass
    return found


def _handle(engine, name: str) -> dict:
    saved = engine.job_dir(name) / "handle.json"
    return json.loads(saved.read_text())["handle"] if saved.is_file() else {}
