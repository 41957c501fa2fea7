"""Which Docker engines a job is warned about: one that may run on another host sees neither this workspace's
folders (bind-mounted at their paths) nor its tracking server on 127.0.0.1; and how a client learns an engine's
API version."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from airflow_mljobs.backends.docker import DockerBackend, _api_version, docker_client
from airflow_mljobs.spec import SubmitError


@pytest.mark.parametrize("url", [None, "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://localhost:2375",
                                 "127.0.0.1:2375", "tcp://[::1]:2375"])
def test_an_engine_on_this_host_gets_no_note(url):
    assert DockerBackend({"docker_url": url}).notes(None) == []


@pytest.mark.parametrize("url", ["tcp://10.1.2.3:2375", "ssh://builder@gpu-box", "gpu-box.internal:2376"])
def test_an_engine_that_may_be_elsewhere_is_named_in_a_note(url):
    (note,) = DockerBackend({"docker_url": url}).notes(None)
    assert url in note and "same paths" in note and "MLFLOW_TRACKING_URI" in note


class _Engine(http.server.BaseHTTPRequestHandler):
    """A loopback stand-in for a Docker engine's ping, answering with the API version it is given (or none)."""

    version: str | None = None
    asked: list = []

    def do_GET(self):  # noqa: N802  (http.server's name)
        self.asked.append(self.path)
        self.send_response(200)
        if self.version:
            self.send_header("Api-Version", self.version)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("answered, expected", [("1.41", "1.41"), ("9.99", "newest"), (None, "auto")])
def test_the_clients_api_version_is_the_engines_from_its_ping_capped_at_the_sdks(answered, expected):
    import docker

    handler = type("Engine", (_Engine,), {"version": answered, "asked": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        version = _api_version(docker, {"base_url": f"tcp://127.0.0.1:{server.server_port}"})
    finally:
        server.shutdown()
    assert version == (docker.constants.DEFAULT_DOCKER_API_VERSION if expected == "newest" else expected)
    assert handler.asked == ["/_ping"]  # the ping only: never /version, which an engine takes ~10 ms to answer


def test_an_engine_that_does_not_answer_is_a_clear_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SubmitError, match=f"cannot reach tcp://127.0.0.1:{port}"):
        docker_client(f"tcp://127.0.0.1:{port}")
