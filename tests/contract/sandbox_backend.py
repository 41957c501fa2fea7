"""A backend written in the tests, registered with one line: proof that a new backend is one module.

Its processes run on this host, but see the job somewhere else: each job gets a root of its own under a
"remote" folder (`MLJOBS_SANDBOX_ROOT`, else the system's temporary folder), as a container or a pod would
see it. Submitting copies the job folder there (the code snapshot, copied inputs, output folders) and each of
`plan.mounts` (the read-only inputs, which the engine does not link for it) to its target, then runs every rank
there as a process group, as the local backend runs its own. `collect` brings back what the job wrote
(./outputs, ./logs, named outputs, the ranks' logs) before the engine uploads it; `release` removes the remote
copy, as the end of a container removes its file system. A cancel is remembered in the job's own folder, which
outlives the copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from airflow_mljobs.backends.base import LogChunk, Outcome, Placement, cancel_reason, mark_canceled
from airflow_mljobs.backends.local import LocalBackend, LocalHandle
from airflow_mljobs.backends.logs import read_available
from airflow_mljobs.plan import ExecutionPlan

COPIED_BACK = ("wd/outputs", "wd/logs", "named-outputs", "user_logs")


def sandbox_root() -> Path:
    return Path(os.environ.get("MLJOBS_SANDBOX_ROOT") or Path(tempfile.gettempdir()) / "mljobs-sandbox")


class SandboxBackend:
    name = "sandbox"

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = settings or {}
        # each job a root of its own: two jobs running at once must not share a working directory
        self.placement = Placement(root=f"{self.settings.get('root') or sandbox_root()}/{{name}}", inputs="mount")

    def notes(self, plan: ExecutionPlan) -> list[str]:
        return LocalBackend().notes(plan)  # it runs this machine's software, as local does

    def prepare(self, plan: ExecutionPlan, job_dir: Path, base_dir: Path, home: Path, log) -> ExecutionPlan:
        return plan

    def submit(self, plan: ExecutionPlan, job_dir: Path, run_identity=None) -> "SandboxHandle":
        remote = Path(plan.root)
        remote.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(job_dir, remote, symlinks=True)
            for mount in plan.mounts:
                _copy(Path(mount.source), Path(mount.target))
            ranks = LocalBackend(self.settings).submit(plan, remote, run_identity)
        except BaseException:
            shutil.rmtree(remote, ignore_errors=True)
            raise
        return SandboxHandle(str(job_dir), str(remote), ranks)

    def attach(self, data: dict) -> "SandboxHandle":
        return SandboxHandle(data["job_dir"], data["remote"], LocalBackend().attach(data["ranks"]))

    def recover(self, plan: dict, job_dir: Path) -> "SandboxHandle | None":
        """From the pid files each rank's shell left in the remote copy as it started."""
        ranks = LocalBackend().recover(plan, Path(plan["root"]))
        return SandboxHandle(str(job_dir), plan["root"], ranks) if ranks else None


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


@dataclass
class SandboxHandle:
    job_dir: str  # on this host: what the engine uploads from
    remote: str  # the job's root as its processes see it
    ranks: LocalHandle  # the ranks' process groups, running in `remote`

    @property
    def started_at(self) -> float:
        return self.ranks.started_at

    def to_dict(self) -> dict:
        return {"backend": "sandbox", "job_dir": self.job_dir, "remote": self.remote, "ranks": self.ranks.to_dict()}

    def poll(self, wait: float = 0.0) -> Outcome | None:
        outcome = self.ranks.poll(wait)
        canceled = cancel_reason(self.job_dir)
        if outcome is not None and canceled:
            return Outcome("Canceled", None, canceled)
        return outcome

    def cancel(self, reason: str = "canceled") -> Outcome:
        mark_canceled(self.job_dir, reason)
        self.ranks.cancel(reason)
        return self.poll() or Outcome("Canceled", None, reason)

    def logs(self, since: dict | None = None, *, final: bool = False) -> Iterator[LogChunk]:
        """The ranks' logs where they write them; once the remote copy is gone, the copies collected here."""
        base = Path(self.remote) if Path(self.remote).is_dir() else Path(self.job_dir)
        files = {rank.rank: base / rank.log for rank in self.ranks.ranks}
        return read_available(files, since or {}, final=final, prefix=len(files) > 1)

    def collect(self) -> None:
        for part in COPIED_BACK:
            source = Path(self.remote) / part
            if source.is_dir():
                shutil.copytree(source, Path(self.job_dir) / part, symlinks=True, dirs_exist_ok=True)

    def release(self, status: str, on_finish: str = "delete") -> None:
        self.ranks.release(status, on_finish)  # what the command left running in the background ends
        if on_finish == "keep" or (on_finish == "delete_on_success" and status != "Completed"):
            return
        shutil.rmtree(self.remote, ignore_errors=True)
