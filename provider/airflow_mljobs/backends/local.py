"""Run a plan as local processes: one process session per rank, in the job folder, logs to files.

Each rank runs `bash -c <command>` under a small shell that writes the exit code to a file, in its own
session (setsid), so the job outlives the process that started it: a retry after a crash attaches again by
pid and start time and still learns how the job ended. Cancel stops every process of every rank's session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..plan import ExecutionPlan
from ..processes import same_process, start_time
from .base import LogChunk, Outcome, Placement, cancel_reason, mark_canceled
from .logs import read_available
from .supervisor import stop_watchdog, watchdog

KILL_GRACE_SECONDS = int(float(os.environ.get("MLJOBS_KILL_GRACE", "10")))
# One shell per rank, its supervisor: it leaves its pid beside its exit file as it starts (a later process finds
# the rank by it, should its submitter die before saving the handle), keeps `limits.timeout` with a watchdog over
# its process group, and evaluates the command under an EXIT trap that writes the exit status to that file.
_WRAPPER = ('mljobs_exit_file=$2; mljobs_timeout=$3; mljobs_canceled=$4; mljobs_grace=$5; '
            'echo $$ > "$mljobs_exit_file.pid"; ' + watchdog("-- -$$", "$$")
            + "trap 'mljobs_status=$?; " + stop_watchdog() + 'echo $mljobs_status > "$mljobs_exit_file"\' EXIT; '
            'mljobs_command=$1; set --; eval "$mljobs_command"')


class LocalBackend:
    name = "local"
    placement = Placement()  # the job folder where it is, inputs linked, the engine's own store, loopback

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = settings or {}

    def prepare(self, plan: ExecutionPlan, job_dir: Path, base_dir: Path, home: Path, log) -> ExecutionPlan:
        return plan

    def notes(self, plan: ExecutionPlan) -> list[str]:
        env = plan.environment
        if env and (env.image or env.build or env.reference or env.conda_file):
            what = env.image or env.reference or (env.build and f"build {env.build.path}") or "conda_file"
            return [f"the environment ({what}) is not used on compute '{plan.compute}': the command runs with "
                    f"this machine's software; use compute docker to run in the image"]
        return []

    def submit(self, plan: ExecutionPlan, job_dir: Path, run_identity=None) -> "LocalHandle":
        run_env = run_identity() if run_identity else {}  # a process starts in a few ms: nothing to make before
        shell = shutil.which("bash") or "/bin/sh"
        ranks = []
        started = []
        try:
            for process in plan.processes:
                exit_file = job_dir / "exit" / f"rank_{process.rank}"
                exit_file.parent.mkdir(exist_ok=True)
                with open(job_dir / process.log, "ab") as log:
                    child = subprocess.Popen(
                        [shell, "-c", _WRAPPER, "mljobs", process.command, str(exit_file), str(plan.timeout or 0),
                         str(job_dir / "canceled"), str(KILL_GRACE_SECONDS)],
                        cwd=job_dir / plan.workdir, env=_environment({**run_env, **process.env}),
                        stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    )
                started.append(child)
                ranks.append(Rank(process.rank, child.pid, start_time(child.pid), process.log, str(exit_file)))
        except OSError as exc:
            for child in started:
                _kill_group(child.pid, signal.SIGKILL)
            raise RuntimeError(f"cannot start the command: {exc}") from exc
        handle = LocalHandle(str(job_dir), ranks, time.time())
        handle._children = {c.pid: c for c in started}
        return handle

    def recover(self, plan: dict, job_dir: Path) -> "LocalHandle | None":
        """The handle of a job whose submitter died as it started its ranks, from the pid each rank's shell
        wrote as it started. A process is that rank only if it started about when its pid file was written
        (the system's start times are computed from a boot time rounded to the second, hence the margin)."""
        ranks, written = [], []
        for process in plan["processes"]:
            exit_file = job_dir / "exit" / f"rank_{process['rank']}"
            pid_file = Path(f"{exit_file}.pid")
            try:
                pid = int(pid_file.read_text())
                written.append(pid_file.stat().st_mtime)
            except (OSError, ValueError):
                return None
            started = start_time(pid)
            if started is None or abs(started - written[-1]) >= 2:
                started = 0.0  # ended: whatever has the pid now did not start then
            ranks.append(Rank(process["rank"], pid, started, process["log"], str(exit_file)))
        return LocalHandle(str(job_dir), ranks, min(written))

    def attach(self, data: dict) -> "LocalHandle":
        return LocalHandle(data["job_dir"], [Rank(**r) for r in data["ranks"]], data["started_at"])


@dataclass
class Rank:
    rank: int
    pid: int
    create_time: float | None
    log: str
    exit_file: str


@dataclass
class LocalHandle:
    job_dir: str
    ranks: list[Rank]
    started_at: float
    _children: dict = field(default_factory=dict, repr=False)  # Popen objects when we started them

    def to_dict(self) -> dict:
        return {"backend": "local", "job_dir": self.job_dir, "started_at": self.started_at,
                "ranks": [vars(r) for r in self.ranks]}

    # -- state -----------------------------------------------------------------------------------------
    def _exit_code(self, rank: Rank) -> int | None:
        child = self._children.get(rank.pid)
        returned = child.poll() if child is not None else None  # also reaps our child: no zombie lingers
        try:
            text = Path(rank.exit_file).read_text().strip()
        except FileNotFoundError:
            return returned  # e.g. a command that `exec`s: the shell's trap never ran, but we saw it end
        return int(text) if text.lstrip("-").isdigit() else returned

    def _alive(self, rank: Rank) -> bool:
        child = self._children.get(rank.pid)
        if child is not None and child.poll() is None:
            return True
        if child is None:
            _reap(rank.pid)  # our child all the same (a job this process started, attached again): no zombie
        return _group_alive(rank.pid) and _same_process(rank)

    def poll(self, wait: float = 0.0) -> Outcome | None:
        """The outcome once every rank has ended, else None; `wait` blocks up to that long for an exit."""
        if wait > 0:
            self._wait_for_exit(wait)
        canceled = cancel_reason(self.job_dir)
        codes = {}
        running = []
        for rank in self.ranks:
            code = self._exit_code(rank)
            if code is None and self._alive(rank):
                running.append(rank)
            else:
                codes[rank.rank] = code
        if canceled and not running:
            return Outcome("Canceled", None, canceled)
        failed = {r: c for r, c in codes.items() if c != 0}
        if failed and running:  # one rank failed: the others cannot finish without it
            self._stop(running)
            running = []
        if running:
            return None
        if not failed:
            return Outcome("Completed", 0)
        rank, code = min(failed.items())
        if code is None:
            return Outcome("Failed", None, f"rank {rank} ended without an exit status (killed from outside?)")
        where = f"rank {rank} " if len(self.ranks) > 1 else ""
        return Outcome("Failed", code, f"the command {where}exited with code {code}")

    def _wait_for_exit(self, seconds: float) -> None:
        if not self._children:
            time.sleep(seconds)  # attached after a restart: nothing to wait on but the clock
            return
        running = [c for c in self._children.values() if c.poll() is None]
        if not running:
            return
        try:
            running[0].wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass

    def release(self, status: str, on_finish: str = "delete") -> None:
        """End what the job's command left running in the background (its process groups), as the end of a
        container ends everything in it; the job folder stays, the record of what ran."""
        self._stop(self.ranks)

    def collect(self) -> None:
        """The processes write into the job folder themselves: nothing to bring back."""

    def cancel(self, reason: str = "canceled") -> Outcome:
        mark_canceled(self.job_dir, reason)
        self._stop(self.ranks)
        return self.poll() or Outcome("Canceled", None, reason)

    def _stop(self, ranks: list[Rank]) -> None:
        """SIGTERM every process of the ranks' sessions, then SIGKILL what is left after the grace period."""
        import psutil

        victims = []
        for rank in ranks:
            if not _same_process(rank):
                continue
            try:
                parent = psutil.Process(rank.pid)
                victims.extend([parent, *parent.children(recursive=True)])
            except psutil.Error:
                pass
            _kill_group(rank.pid, signal.SIGTERM)
        _signal_all(victims, "terminate")
        deadline = time.time() + KILL_GRACE_SECONDS
        while time.time() < deadline and (any(_running(v) for v in victims) or not victims
                                          and any(_group_alive(r.pid) for r in ranks)):
            for child in self._children.values():
                child.poll()
            time.sleep(0.05)
        for rank in ranks:
            _kill_group(rank.pid, signal.SIGKILL)
        _signal_all(victims, "kill")
        for child in self._children.values():
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    # -- logs --------------------------------------------------------------------------------------------
    def logs(self, since: dict | None = None, *, final: bool = False) -> Iterator[LogChunk]:
        files = {r.rank: Path(self.job_dir) / r.log for r in self.ranks}
        return read_available(files, since or {}, final=final, prefix=len(files) > 1)


def _signal_all(processes, method: str) -> None:
    """`terminate` or `kill` each psutil process, ignoring the ones that are gone already."""
    import psutil

    for process in processes:
        try:
            getattr(process, method)()
        except psutil.Error:
            pass


def _running(process) -> bool:
    """Whether the psutil `process` still runs: not ended, and not a zombie waiting to be collected."""
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _environment(env: dict[str, str]) -> dict[str, str]:
    """The job's variables over this process's, minus the ones that would point user code elsewhere.

    The Python environment mljobs runs in comes first on PATH, so `python` in a command is that Python.
    """
    inherited = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI")
    base = {k: v for k, v in os.environ.items() if k not in inherited}
    here = str(Path(sys.executable).parent)
    path = base.get("PATH", os.defpath)
    base["PATH"] = path if path.split(os.pathsep)[0] == here else f"{here}{os.pathsep}{path}"
    return {**base, **env}


def _same_process(rank: Rank) -> bool:
    """True while `rank.pid` is still the process we started (pids are reused)."""
    if rank.create_time is None:
        return _group_alive(rank.pid)
    return same_process(rank.pid, rank.create_time)


def _reap(pid: int) -> None:
    """Collect `pid`'s exit if it is an ended child of this process; a zombie would count as alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its own parent, or init, collects it
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
