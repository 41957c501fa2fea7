"""Distributed jobs of 2 instances x 2 processes running real collectives on the local backend: a gloo
all_reduce with PyTorch, an allreduce with mpi4py under one mpirun, and TensorFlow's TF_CONFIG contract proven by
the workers really talking to each other. The job files are in tests/jobs/collectives/; the Docker tests run the
very same files with `compute=docker`."""

from __future__ import annotations

import re
import subprocess
import warnings

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

COLLECTIVES = ROOT / "tests" / "jobs" / "collectives"
INFRA = ROOT / "tests" / "infra"
RANKS = range(4)  # 2 instances x 2 processes


def run(engine, path, name, overrides=(), **kwargs):
    lines = []
    submission = engine.submit(engine.load(path, list(overrides)), name=name, log=lines.append, **kwargs)
    outcome = engine.follow(submission, lines.append)
    return engine.finalize(submission, outcome), "".join(lines)


def user_log(engine, name: str, rank: int | None = None) -> str:
    """A rank's log in the job folder (the job's one log when `rank` is None)."""
    file = "std_log.txt" if rank is None else f"std_log_process_{rank}.txt"
    return (engine.job_dir(name) / "user_logs" / file).read_text()


def torch_line(rank: int) -> str:
    return f"rank {rank} of world 4 (node {rank // 2}, local rank {rank % 2}): all_reduce sum 10"


def mpi_line(rank: int) -> str:
    return f"rank {rank} of size 4: allreduce sum 10, buffer sum 10"


def assert_torch_ranks_reduced(engine, name: str, result, log: str) -> None:
    assert result.status == "Completed", log[-3000:]
    for rank in RANKS:
        assert torch_line(rank) in user_log(engine, name, rank), user_log(engine, name, rank)[-2000:]
        assert f"[rank {rank}] {torch_line(rank)}" in log  # streamed as it was written, by rank


def assert_mpi_ranks_reduced(engine, name: str, result, log: str) -> None:
    """One launcher, so one log: every rank's line is in it."""
    assert result.status == "Completed", log[-3000:]
    assert not list((engine.job_dir(name) / "user_logs").glob("std_log_process_*.txt"))
    text = user_log(engine, name)
    # mpirun forwards the ranks' output as it comes: one rank's line may run into another's, never cut
    found = sorted(re.findall(r"rank \d of size \d: allreduce sum \d+, buffer sum \d+", text))
    assert found == [mpi_line(r) for r in RANKS], text
    assert "Read -1" not in text, text  # no rank failed to read another's memory directly


def assert_workers_reached_each_other(engine, name: str, result, log: str) -> None:
    assert result.status == "Completed", log[-3000:]
    clusters = []
    for worker, other in ((0, 1), (1, 0)):
        text = user_log(engine, name, worker)
        (cluster,) = [line.split("cluster ", 1)[1] for line in text.splitlines()
                      if line.startswith(f"worker {worker} of 2: cluster ")] or [text]
        addresses = cluster.split(",")
        clusters.append(addresses)
        assert len(addresses) == 2 and all(a.startswith("127.0.0.1:") for a in addresses), text
        assert f"worker {worker} reached worker {other} at {addresses[other]}\n" in text, text
        assert f"worker {worker} was reached by worker {other}\n" in text, text
    assert clusters[0] == clusters[1]  # one cluster, the same for every worker


@pytest.fixture(scope="session")
def open_mpi():
    """Open MPI and mpi4py for Debian's /usr/bin/python3, installed by the tests' setup when missing."""
    installed = subprocess.run(["bash", str(INFRA / "install-mpi.sh")], capture_output=True, text=True, timeout=900)
    if installed.returncode != 0:
        message = f"NO OPEN MPI: the local MPI test is skipped: {installed.stderr.strip()[-500:]}"
        warnings.warn(message)
        pytest.skip(message)


def test_four_pytorch_ranks_on_two_instances_sum_their_numbers_with_a_gloo_all_reduce(engine, unique):
    name = unique("torch")
    result, log = run(engine, COLLECTIVES / "pytorch.yml", name)
    assert_torch_ranks_reduced(engine, name, result, log)


def test_one_mpirun_starts_four_ranks_whose_mpi4py_allreduce_sums_their_numbers(engine, unique, open_mpi):
    name = unique("mpi")
    result, log = run(engine, COLLECTIVES / "mpi.yml", name)
    assert_mpi_ranks_reduced(engine, name, result, log)


def test_tensorflow_workers_find_the_cluster_in_tf_config_and_reach_each_other_there(engine, unique):
    name = unique("tf")
    result, log = run(engine, COLLECTIVES / "tensorflow.yml", name)
    assert_workers_reached_each_other(engine, name, result, log)
