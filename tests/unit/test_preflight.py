"""What keeps a job from starting here, found before it starts and said where the YAML says it."""

from __future__ import annotations

import os
import subprocess
import sys

from airflow_mljobs.preflight import problems
from airflow_mljobs.spec import load


def _found(path, home, overrides=()):
    return [str(p).split("\n")[0] for p in problems(load(path, list(overrides)), home)]


def test_a_container_job_without_an_image_or_with_a_refused_flag(write_yaml, tmp_path):
    path = write_yaml("""
        command: echo hi
        compute: docker
        resources:
          docker_args: --privileged
    """)
    assert _found(path, tmp_path / "ws") == [
        f"{path}:4:16: error: resources.docker_args: --privileged is refused: it would weaken the container's isolation",
        f"{path}:1:1: error: environment: a container job needs an environment with an image or a build context",
    ]


def test_missing_conda_file_and_build_context_are_placed_on_their_keys(write_yaml, tmp_path):
    conda = write_yaml("""
        command: echo hi
        compute: docker
        environment:
          image: python:3.11-slim
          conda_file: env.yml
    """)
    assert _found(conda, tmp_path / "ws") == [f"{conda}:5:15: error: environment.conda_file: {conda.parent}/env.yml does not exist"]
    build = write_yaml("""
        command: echo hi
        compute: docker
        environment:
          build: {path: context}
    """, "build.yml")
    assert _found(build, tmp_path / "ws") == [
        f"{build}:4:17: error: environment.build.path: build context {build.parent}/context is not a folder"]


def test_a_sweep_trials_code_and_an_unknown_compute_from_set(write_yaml, tmp_path):
    path = write_yaml("""
        type: sweep
        trial:
          command: python t.py ${{search_space.x}}
          code: src
        sampling_algorithm: random
        search_space: {x: {type: choice, values: [1]}}
        objective: {goal: maximize, primary_metric: m}
    """)
    found = _found(path, tmp_path / "ws", ["compute=gpu-cluster"])
    assert found[0] == f"{path}:4:9: error: trial.code: {path.parent}/src does not exist"
    assert found[1].startswith("--set compute=gpu-cluster: error: compute: compute 'gpu-cluster' is not registered")


def test_a_job_that_can_start_has_no_problem(write_yaml, tmp_path):
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "data.csv").write_text("x\n")
    path = write_yaml("""
        command: python t.py ${{inputs.d}}
        code: src
        inputs: {d: {type: uri_file, path: data.csv}, url: {type: uri_file, path: "http://127.0.0.1:9/x"}}
        compute: docker
        environment: {image: python:3.11-slim}
    """)
    assert _found(path, tmp_path / "ws") == []


def test_validate_and_dry_run_report_them_and_exit_2(write_yaml, tmp_path):
    path = write_yaml("command: ls\ncode: nowhere\n")
    env = {**os.environ, "MLJOBS_HOME": str(tmp_path / "ws")}
    for args in (["validate"], ["create", "--dry-run"]):
        result = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", *args, "-f", str(path)],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{path}:2:7: error: code: {path.parent}/nowhere does not exist" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "ws" / "mlflow.db").exists()  # nothing was recorded


def test_a_distribution_without_a_launcher_is_refused_on_its_type(write_yaml, tmp_path):
    """Ray would otherwise start as unconnected plain processes: refused where the YAML says it, in a sweep too."""
    command = write_yaml("""
        command: python train.py
        distribution:
          type: ray
        resources: {instance_count: 2}
    """)
    assert _found(command, tmp_path / "ws") == [
        f"{command}:3:9: error: distribution.type: distribution type 'ray' is not run by mljobs (it runs pytorch, "
        f"tensorflow and mpi); without a launcher its processes would start unconnected"]
    sweep = write_yaml("""
        type: sweep
        sampling_algorithm: random
        search_space: {lr: {type: choice, values: [1, 2]}}
        objective: {primary_metric: m, goal: maximize}
        limits: {max_total_trials: 2}
        trial:
          command: python train.py ${{search_space.lr}}
          distribution: {type: ray}
    """, name="sweep.yml")
    assert [line.split(": error: ")[1].split(":")[0] for line in _found(sweep, tmp_path / "ws")] == [
        "trial.distribution.type"]
