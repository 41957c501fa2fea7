"""A Docker job nobody follows keeps its limits and its exit status in its container, and whoever reads it next
records its true end and removes its containers."""

from __future__ import annotations

import time

import pytest

from airflow_mljobs.engine import Engine
from tests.docker.conftest import job_containers

pytestmark = pytest.mark.slow

IMAGE = "environment: {image: python:3.11-slim}\ncompute: docker\n"


def wait_for_exit(client, name: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if all(c.status == "exited" for c in job_containers(client, name)):
            return
        time.sleep(0.2)
    raise AssertionError(f"the containers of {name} still run")


def test_an_unfollowed_docker_job_is_recorded_completed_by_the_next_show(docker_engine, engine, project, unique,
                                                                         workspace):
    path = project(IMAGE + "command: echo started; sleep 1; exit 5\n")
    name = unique("unfollowed")
    engine.submit(engine.load(path), name=name)  # and never followed, as if its follower had been killed
    wait_for_exit(docker_engine, name)
    shown = Engine(home=workspace).show(name)
    assert (shown["status"], shown["exit_code"]) == ("Failed", 5)
    assert job_containers(docker_engine, name) == []


def test_an_unfollowed_docker_job_still_stops_at_its_timeout(docker_engine, engine, project, unique, workspace):
    path = project(IMAGE + "command: echo started; sleep 60 & sleep 60\nlimits: {timeout: 2}\n")
    name = unique("timeout-alone")
    engine.submit(engine.load(path), name=name)
    started = time.time()
    wait_for_exit(docker_engine, name, 30)
    assert time.time() - started < 15
    shown = Engine(home=workspace).show(name)
    assert shown["status"] == "Canceled" and shown["failure_reason"] == "timed out after limits.timeout of 2 s"
    assert job_containers(docker_engine, name) == []


@pytest.mark.parametrize("phase", ["running", "finalizing"])
def test_a_docker_job_whose_stream_is_killed_is_recorded_by_the_next_show(docker_engine, mljobs, project, unique,
                                                                           workspace, phase):
    """kill -9 of `create --stream` while the container runs, or while its outputs upload: the next command that
    reads the job records its true end and removes its container."""
    import os
    import signal

    command = ("echo started; sleep 4; echo finished" if phase == "running" else
               "for i in $(seq 1 1500); do echo $i > outputs/f$i.txt; done; echo finished")
    name = unique(f"killed-{phase}")
    stream = mljobs.start("job", "create", "-f", str(project(IMAGE + f"command: {command}\n")), "--name", name,
                          "--stream")
    folder = workspace / "jobs" / name
    try:
        deadline = time.time() + 120
        if phase == "running":
            for line in stream.stdout:
                if "started" in line or time.time() > deadline:
                    break
        else:
            while not (folder / "finalizing").is_file() and time.time() < deadline:
                time.sleep(0.02)
        os.kill(stream.pid, signal.SIGKILL)
        stream.wait(10)
    finally:
        stream.kill()
    assert not (folder / "result.json").exists()
    wait_for_exit(docker_engine, name)
    shown = Engine(home=workspace).show(name)
    assert (shown["status"], shown["exit_code"]) == ("Completed", 0), shown["failure_reason"]
    assert job_containers(docker_engine, name) == []
    if phase == "finalizing":
        record = Engine(home=workspace).tracker.record(Engine(home=workspace).tracker.find_job(name))
        assert len(record.artifacts("outputs")) == 1500
