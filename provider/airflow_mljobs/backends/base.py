"""The one small interface every backend implements. The engine never branches on a backend's name.

A backend gives its `placement` (where its processes see the job and how files and addresses reach them),
`prepare`s what a plan needs (an image, for containers), and `submit`s it, returning a Handle at once; the
job's MLflow run is created meanwhile and `run_identity()` waits for it. A Handle polls, cancels, follows
logs as resumable chunks, `collect`s what the job wrote back into its folder, `release`s what it leaves
behind, and serialises itself so that a trigger, `on_kill` or a retry attaches again. Should a submitter die
before the handle is saved, `recover(plan, job_dir)` finds the job from what it left (labels, pid files).

A new backend is one module and one line in `BACKENDS`.
"""

from __future__ import annotations

import importlib
import socket
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


@dataclass(frozen=True)
class Placement:
    """What the engine must know of where a backend runs a job's processes.

    `root`: the job folder as the processes see it, `{name}` standing for the job's name (None: at its path on
    this host). `inputs`: how read-only
    inputs arrive: "link" (a symbolic link into this host's files) or "mount" (the backend mounts them).
    `needs_server`: the processes cannot open the engine's own store and record through a tracking server.
    `image`: they run in the job's environment image. `addresses` says where ranks meet."""

    root: str | None = None
    inputs: str = "link"
    needs_server: bool = False
    image: bool = False

    def job_root(self, job_dir: Path) -> str:
        return self.root.format(name=job_dir.name) if self.root else str(job_dir)

    def addresses(self, name: str, nodes: int, ports: int = 1) -> tuple[list[str], int]:
        """Each instance's address and the first of `ports` consecutive ports the ranks listen on. Ranks here
        share this host's loopback, so the ports are free ones rather than Azure's fixed 6105 (several jobs run
        side by side)."""
        return ["127.0.0.1"] * nodes, free_ports(ports)


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive ports that are free on loopback."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count <= 65536 and all(_free(port) for port in range(first + 1, first + count)):
            return first
    raise OSError(f"no {count} consecutive free ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Handle(Protocol):
    """A started job. `to_dict()` carries `"backend": <its backend's name>`, which `get_backend(...).attach` reads."""

    started_at: float

    def poll(self, wait: float = 0.0) -> Outcome | None: ...

    def cancel(self, reason: str = "canceled") -> Outcome: ...

    def release(self, status: str, on_finish: str = "delete") -> None: ...

    def collect(self) -> None: ...

    def logs(self, since: dict | None = None, *, final: bool = False) -> Iterator[LogChunk]: ...

    def to_dict(self) -> dict: ...


class Backend(Protocol):
    """Made as `Backend(settings)`, the compute's settings over which the caller's go (an engine's URL)."""

    name: str
    placement: Placement

    def notes(self, plan: ExecutionPlan) -> list[str]: ...

    def prepare(self, plan: ExecutionPlan, job_dir: Path, base_dir: Path, home: Path, log) -> ExecutionPlan: ...

    def submit(self, plan: ExecutionPlan, job_dir: Path, run_identity=None) -> Handle: ...

    def attach(self, data: dict) -> Handle: ...

    def recover(self, plan: dict, job_dir: Path) -> Handle | None: ...


# name -> "module:Class", imported on demand: the docker and kubernetes clients load only when used
BACKENDS: dict[str, str] = {
    "local": "airflow_mljobs.backends.local:LocalBackend",
    "docker": "airflow_mljobs.backends.docker:DockerBackend",
}


def get_backend(name: str, settings: dict | None = None) -> Backend:
    from ..spec import SubmitError

    if name == "kubernetes" and name not in BACKENDS:
        raise SubmitError("the kubernetes backend is not available in this version; run on compute local or docker")
    try:
        module, _, cls = BACKENDS[name].partition(":")
    except KeyError:
        raise SubmitError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
    return getattr(importlib.import_module(module), cls)(settings)


def mark_canceled(job_dir: str | Path, reason: str) -> None:
    """Remember that the job was canceled, and why, before anything is stopped (the first reason stays)."""
    marker = Path(job_dir) / "canceled"
    if not marker.exists():
        marker.write_text(reason)


def cancel_reason(job_dir: str | Path) -> str | None:
    """Why the job was canceled, or None when it was not."""
    marker = Path(job_dir) / "canceled"
    return (marker.read_text() or "canceled") if marker.exists() else None
