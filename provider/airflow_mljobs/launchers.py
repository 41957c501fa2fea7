"""Launchers: a job's `distribution` turned into ranks, one small class per type.

Each gets the rendered command, the instances' addresses and rank 0's port (from the backend's placement), and
gives every rank its command, environment and log file as Azure ML sets them; the same launcher serves local
processes, containers and pods. A type with no launcher here is refused before anything starts.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from .plan import ProcessPlan


@dataclass(frozen=True)
class Layout:
    """What every launcher reads: the command, the instances, where rank 0 listens, the shared environment and
    the job's own `environment_variables` (which win over everything)."""

    command: str
    nodes: int
    hosts: list[str]
    port: int
    env: dict[str, str]
    user_env: dict[str, str]

    def rank(self, rank: int, node: int, local: int, rank_env: dict, count: int, command: str | None = None):
        return ProcessPlan(rank, node, local, command or self.command, {**self.env, **rank_env, **self.user_env},
                           log_file(rank, count))


class Plain:
    """No distribution: one process on each instance."""

    def __init__(self, distribution=None) -> None:
        self.distribution = distribution

    @property
    def per_instance(self) -> int:
        return 1

    def ports(self, nodes: int) -> int:
        """How many consecutive ports, from rank 0's, the ranks listen on."""
        return 1

    def rank_env(self, layout: Layout, rank: int, node: int, local: int, world: int) -> dict[str, str]:
        return {"NODE_RANK": str(node), "RANK": str(rank), "LOCAL_RANK": str(local)}

    def ranks(self, layout: Layout) -> tuple[ProcessPlan, ...]:
        per_node = self.per_instance
        world = layout.nodes * per_node
        return tuple(layout.rank(node * per_node + local, node, local,
                                 self.rank_env(layout, node * per_node + local, node, local, world), world)
                     for node in range(layout.nodes) for local in range(per_node))


class PyTorch(Plain):
    """`process_count_per_instance` processes on each instance, meeting at rank 0 (torch.distributed's env://)."""

    @property
    def per_instance(self) -> int:
        return self.distribution.process_count_per_instance

    def rank_env(self, layout: Layout, rank: int, node: int, local: int, world: int) -> dict[str, str]:
        return {**super().rank_env(layout, rank, node, local, world),
                "MASTER_ADDR": layout.hosts[0], "MASTER_PORT": str(layout.port), "WORLD_SIZE": str(world),
                "LOCAL_WORLD_SIZE": str(self.per_instance), "GROUP_RANK": str(node)}


class TensorFlow(Plain):
    """One process per worker and parameter server, each told the whole cluster in TF_CONFIG."""

    def ports(self, nodes: int) -> int:
        return (self.distribution.worker_count or nodes) + self.distribution.parameter_server_count

    def ranks(self, layout: Layout) -> tuple[ProcessPlan, ...]:
        workers = self.distribution.worker_count or layout.nodes
        servers = self.distribution.parameter_server_count
        hosts, port, nodes = layout.hosts, layout.port, layout.nodes
        cluster = {"worker": [f"{hosts[i % len(hosts)]}:{port + i}" for i in range(workers)]}
        if servers:
            cluster["ps"] = [f"{hosts[i % len(hosts)]}:{port + workers + i}" for i in range(servers)]
        tasks = [("worker", i) for i in range(workers)] + [("ps", i) for i in range(servers)]
        ranks = []
        for rank, (task, index) in enumerate(tasks):
            config = {"cluster": cluster, "task": {"type": task, "index": index}, "environment": "cloud"}
            rank_env = {"TF_CONFIG": json.dumps(config), "RANK": str(rank), "NODE_RANK": str(rank % nodes)}
            ranks.append(layout.rank(rank, rank % nodes, 0, rank_env, len(tasks)))
        return tuple(ranks)


class Mpi(Plain):
    """One launcher, rank 0's: `mpirun` starts `process_count_per_instance` x instances ranks, which take their
    rank from Open MPI's own variables."""

    def ranks(self, layout: Layout) -> tuple[ProcessPlan, ...]:
        total = self.distribution.process_count_per_instance * layout.nodes
        command = (f"mpirun --oversubscribe --allow-run-as-root --bind-to none -np {total} "
                   f"bash -c {shlex.quote(layout.command)}")
        rank_env = {"AZ_BATCH_MASTER_NODE": f"{layout.hosts[0]}:{layout.port}", "NODE_RANK": "0"}
        return (layout.rank(0, 0, 0, rank_env, 1, command),)


LAUNCHERS = {None: Plain, "pytorch": PyTorch, "tensorflow": TensorFlow, "mpi": Mpi}


def launcher_for(distribution) -> Plain:
    """The launcher of a job's distribution; a type without one is refused (see `unsupported`)."""
    kind = distribution.type if distribution else None
    if kind not in LAUNCHERS:
        from .spec import SubmitError

        raise SubmitError(unsupported(kind))
    return LAUNCHERS[kind](distribution)


def unsupported(kind: str) -> str:
    return (f"distribution type '{kind}' is not run by mljobs (it runs pytorch, tensorflow and mpi); without a "
            f"launcher its processes would start unconnected")


def log_file(rank: int, count: int) -> str:
    return "user_logs/std_log.txt" if count == 1 else f"user_logs/std_log_process_{rank}.txt"
