"""Which Docker engines a job is warned about: one that may run on another host sees neither this workspace's
folders (bind-mounted at their paths) nor its tracking server on 127.0.0.1."""

from __future__ import annotations

import pytest

from airflow_mljobs.backends.docker import DockerBackend


@pytest.mark.parametrize("url", [None, "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://localhost:2375",
                                 "127.0.0.1:2375", "tcp://[::1]:2375"])
def test_an_engine_on_this_host_gets_no_note(url):
    assert DockerBackend({"docker_url": url}).notes(None) == []


@pytest.mark.parametrize("url", ["tcp://10.1.2.3:2375", "ssh://builder@gpu-box", "gpu-box.internal:2376"])
def test_an_engine_that_may_be_elsewhere_is_named_in_a_note(url):
    (note,) = DockerBackend({"docker_url": url}).notes(None)
    assert url in note and "same paths" in note and "MLFLOW_TRACKING_URI" in note
