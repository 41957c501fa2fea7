"""The collective jobs of tests/engine/test_collectives.py, the same files, in Docker (`compute=docker`): the
PyTorch ranks in a container each, with torch layered on the offline base image from a wheelhouse; the MPI
ranks under one mpirun in one container, with the base image's Open MPI and mpi4py; the TensorFlow workers in a
container each. Containers use the host's network, so ranks meet on 127.0.0.1 as on the local backend."""

from __future__ import annotations

import json

import pytest

from tests.docker.conftest import job_containers
from tests.engine.test_collectives import (
    COLLECTIVES,
    assert_mpi_ranks_reduced,
    assert_torch_ranks_reduced,
    assert_workers_reached_each_other,
    run,
)

pytestmark = pytest.mark.slow

ON_DOCKER = ["compute=docker"]


def containers_of(engine, name: str) -> list[str]:
    """The names of the containers the job ran in, from the handle saved in its folder."""
    saved = json.loads((engine.job_dir(name) / "handle.json").read_text())
    return sorted(container["name"] for container in saved["handle"]["containers"])


def test_four_pytorch_ranks_in_a_container_each_sum_their_numbers_with_a_gloo_all_reduce(docker_engine, engine,
                                                                                        unique):
    """The job's conda file puts torch on the base image: its wheels are downloaded on the host and installed
    offline into an `mljobs-env:` image, built on the first run (and removed at the end of the session)."""
    name = unique("torch-docker")
    result, log = run(engine, COLLECTIVES / "pytorch.yml", name, ON_DOCKER)
    assert_torch_ranks_reduced(engine, name, result, log)
    assert containers_of(engine, name) == [f"mljobs-{name}-{rank}" for rank in range(4)]
    image = json.loads((engine.job_dir(name) / "plan.json").read_text())["image"]
    assert image.startswith("mljobs-env:"), image
    assert job_containers(docker_engine, name) == []


def test_one_mpirun_in_one_container_starts_four_ranks_whose_mpi4py_allreduce_sums_their_numbers(docker_engine,
                                                                                                engine, unique):
    name = unique("mpi-docker")
    result, log = run(engine, COLLECTIVES / "mpi.yml", name, ON_DOCKER)
    assert_mpi_ranks_reduced(engine, name, result, log)
    assert containers_of(engine, name) == [f"mljobs-{name}"]
    assert job_containers(docker_engine, name) == []


def test_tensorflow_workers_in_a_container_each_reach_each_other_at_the_tf_config_addresses(docker_engine, engine,
                                                                                           unique):
    name = unique("tf-docker")
    result, log = run(engine, COLLECTIVES / "tensorflow.yml", name, ON_DOCKER)
    assert_workers_reached_each_other(engine, name, result, log)
    assert containers_of(engine, name) == [f"mljobs-{name}-0", f"mljobs-{name}-1"]
    assert job_containers(docker_engine, name) == []
