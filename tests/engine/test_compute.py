"""Registering compute targets and what jobs naming them get."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_mljobs import compute
from airflow_mljobs.spec import SpecError, SubmitError
from tests.helpers import JOBS


def cli(home, *args):
    return subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "compute", *args], capture_output=True,
                          text=True, env={**os.environ, "MLJOBS_HOME": str(home)}, timeout=60)


def test_register_list_show_delete(tmp_path):
    assert cli(tmp_path, "create", "-f", str(JOBS / "compute" / "docker-host.yml")).stdout.strip() == "docker-host"
    listed = cli(tmp_path, "list").stdout
    assert "docker-host" in listed and "local" in listed
    assert "docker_url: unix:///var/run/docker.sock" in cli(tmp_path, "show", "-n", "docker-host").stdout
    assert cli(tmp_path, "delete", "-n", "docker-host", "--yes").returncode == 0
    assert cli(tmp_path, "show", "-n", "docker-host").returncode == 1


def test_resolution(tmp_path):
    assert compute.resolve(None, tmp_path).name == "local"
    assert compute.resolve("azureml:local", tmp_path).type == "local"
    with pytest.raises(SubmitError, match="compute 'gpu-cluster' is not registered"):
        compute.resolve("azureml:gpu-cluster", tmp_path)
    compute.register(JOBS / "compute" / "cpu-cluster.yml", tmp_path)
    cluster = compute.resolve("azureml:cpu-cluster", tmp_path)
    assert cluster.type == "amlcompute" and cluster.settings["max_instances"] == 4
    with pytest.raises(SubmitError, match="Azure 'amlcompute' target, which mljobs cannot start"):
        compute.backend_name(cluster)


def test_a_kubernetes_compute_is_refused_clearly(tmp_path, monkeypatch):
    from airflow_mljobs.engine import Engine

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "k8s.yml").write_text("name: k8s\ntype: kubernetes\nnamespace: ml\n")
    compute.register(tmp_path / "k8s.yml", tmp_path / "ws")
    (tmp_path / "job.yml").write_text("command: echo\ncompute: azureml:k8s\n")
    engine = Engine(home=tmp_path / "ws")
    with pytest.raises(SpecError, match="job.yml:2:10: error: compute: the kubernetes backend is not available"):
        engine.submit(engine.load(tmp_path / "job.yml"))
    assert not (tmp_path / "ws" / "jobs").exists()  # nothing was made or recorded
