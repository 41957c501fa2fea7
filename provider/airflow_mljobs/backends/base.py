"""The one small interface every backend implements. The engine never branches on a backend's name.

`Backend.prepare(plan, ...)` readies what the plan needs (an image, for containers) and `Backend.submit(plan,
job_dir, run_identity)` starts the job and returns a Handle at once. The job's MLflow run is created meanwhile:
`run_identity()` waits for it and gives its variables, which a backend asks for as late as it can (a container
is created before). A Handle knows how to `poll(wait)`
for the outcome (blocking up to `wait` seconds for a change), `cancel(reason)` everything the job started, follow its `logs(since)` as resumable chunks,
`release()` what it leaves behind once the engine has saved it, and serialize itself with `to_dict()` so that
a trigger, `on_kill` or a retry can `attach()` again. The engine saves a handle the moment `submit` returns it;
should the submitter die before, `recover(plan, job_dir)` finds the job's processes from what they left (labels,
pid files), or says there is nothing to attach to.
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

    def release(self, status: str, on_finish: str = "delete") -> None: ...

    def sync_logs(self) -> None: ...

    def logs(self, since: dict | None = None, *, final: bool = False) -> Iterator[LogChunk]: ...

    def to_dict(self) -> dict: ...


class Backend(Protocol):
    name: str
    links_inputs: bool  # may read-only inputs be symbolic links into the host file system?
    isolated: bool  # do its processes need a tracking server rather than the host's store?

    def notes(self, plan: ExecutionPlan) -> list[str]: ...

    def prepare(self, plan: ExecutionPlan, job_dir: Path, base_dir: Path, home: Path, log) -> ExecutionPlan: ...

    def submit(self, plan: ExecutionPlan, job_dir: Path, run_identity=None) -> Handle: ...

    def attach(self, data: dict) -> Handle: ...

    def recover(self, plan: dict, job_dir: Path) -> Handle | None: ...


def get_backend(name: str, settings: dict | None = None) -> Backend:
    """Backends are imported on demand: the docker and kubernetes clients load only when used."""
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(settings)
    if name == "docker":
        from .docker import DockerBackend

        return DockerBackend(settings)
    if name == "kubernetes":
        from ..spec import SubmitError

        raise SubmitError("the kubernetes backend is not available in this version; run on compute local or docker")
    raise ValueError(f"unknown backend {name!r}")


def mark_canceled(job_dir: str | Path, reason: str) -> None:
    """Remember that the job was canceled, and why, before anything is stopped (the first reason stays)."""
    marker = Path(job_dir) / "canceled"
    if not marker.exists():
        marker.write_text(reason)


def cancel_reason(job_dir: str | Path) -> str | None:
    """Why the job was canceled, or None when it was not."""
    marker = Path(job_dir) / "canceled"
    return (marker.read_text() or "canceled") if marker.exists() else None
