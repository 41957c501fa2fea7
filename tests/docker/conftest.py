"""A real Docker engine for the Docker tests: started (and the offline base image built) by the tests' setup.

Skipped, loudly, only where no engine can be started at all (no docker.io and no way to install it, or no
permission to run dockerd).
"""

from __future__ import annotations

import os
import subprocess
import warnings

import pytest

from tests.engine.conftest import engine, http_files, mljobs, project, unique, workspace  # noqa: F401  (shared)
from tests.helpers import ROOT

INFRA = ROOT / "tests" / "infra"


@pytest.fixture(scope="session")
def docker_engine():
    started = subprocess.run(["bash", str(INFRA / "start-dockerd.sh")], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        message = f"NO DOCKER ENGINE: the Docker tests are skipped: {started.stderr.strip()[-500:]}"
        warnings.warn(message)
        pytest.skip(message)
    built = subprocess.run(["bash", str(INFRA / "build-base-image.sh")], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    import docker

    client = docker.from_env()
    before = {image.id for image in _built_images(client)}
    yield client
    for image in _built_images(client):  # the images this session's jobs built: a test run leaves none behind
        if image.id not in before:
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.APIError:  # removed already by another module's copy of this fixture
                pass
    client.close()


def _built_images(client) -> list:
    return [image for image in client.images.list()
            if any(tag.split(":")[0] in ("mljobs-build", "mljobs-env") for tag in image.tags)]


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(workspace):
    """Container jobs start a tracking server for the workspace: stop it; and no job container may remain."""
    yield
    from airflow_mljobs.tracking.server import stop_server

    stop_server(workspace)
    import docker

    try:
        client = docker.from_env()
        leftovers = client.containers.list(all=True, filters={"label": "mljobs.job"})
    except Exception:
        return  # no engine: nothing could be left
    names = [c.name for c in leftovers]
    for container in leftovers:
        container.remove(force=True)
    assert names == [], f"job containers left behind: {names}"


def job_containers(client, name: str) -> list:
    return client.containers.list(all=True, filters={"label": f"mljobs.job={name}"})


def build_containers_left(client, token: str, seconds: float = 30) -> list:
    """The containers whose command holds `token` (an image build's step) once they are gone, or after
    `seconds`: the engine stops a build's own container shortly after its client has gone."""
    import time

    deadline = time.time() + seconds
    while True:
        left = [c.name for c in client.containers.list(all=True) if token in " ".join(c.attrs["Config"]["Cmd"] or [])]
        if not left or time.time() >= deadline:
            return left
        time.sleep(0.5)


def uid() -> int:
    return os.getuid()
