"""The one small interface every backend implements. The engine never branches on a backend's name.

`Backend.submit(plan, job_dir)` starts the job and returns a Handle at once. A Handle knows how to `poll(wait)`
for the outcome (blocking up to `wait` seconds for a change), `cancel(reason)` everything the job started, follow its `logs(since)` as resumable chunks,
and serialize itself with `to_dict()` so that a trigger, `on_kill` or a retry can `attach()` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from ..plan import ExecutionPlan


@dataclass(frozen=True)
class Outcome:
    status: str  # Completed, Failed or Canceled
    exit_code: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class LogChunk:
    text: str  # whole lines, each ending in a newline
    token: dict  # pass back as `since` to resume after this chunk


class Handle(Protocol):
    def poll(self, wait: float = 0.0) -> Outcome | None: ...

    def cancel(self, reason: str = "canceled") -> Outcome: ...

    def logs(self, since: dict | None = None, *, final: bool = False) -> Iterator[LogChunk]: ...

    def to_dict(self) -> dict: ...


class Backend(Protocol):
    name: str

    def notes(self, plan: ExecutionPlan) -> list[str]: ...

    def submit(self, plan: ExecutionPlan, job_dir: Path) -> Handle: ...

    def attach(self, data: dict) -> Handle: ...


def get_backend(name: str) -> Backend:
    """Backends are imported on demand: the docker and kubernetes clients load only when used."""
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    if name == "docker":
        from .docker import DockerBackend

        return DockerBackend()
    if name == "kubernetes":
        from .kubernetes import KubernetesBackend

        return KubernetesBackend()
    raise ValueError(f"unknown backend {name!r}")
