"""Run a plan as Docker containers: one per rank, labelled with the job's name, never privileged.

The job folder is mounted at the plan's root, read-only inputs are mounted read-only, and processes run as
the invoking user, so outputs on the host belong to them. Containers use the host's network: ranks find each
other on 127.0.0.1 as on the local backend, and reach a tracking server on loopback.

Logs are read from the engine's own log store (everything since the container was created, so no first line is
lost), with timestamps; a follower that restarts resumes after the last timestamp it wrote, without duplicates.
Cancel stops, then removes, every container carrying the job's label.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..plan import ExecutionPlan
from ..spec import SubmitError
from .base import LogChunk, Outcome, Placement, cancel_reason, mark_canceled
from .docker_args import gpu_request, parse_docker_args, size_in_bytes
from .logs import read_available
from .supervisor import stop_watchdog, watchdog

KILL_GRACE_SECONDS = int(os.environ.get("MLJOBS_KILL_GRACE", "10"))
JOB_LABEL = "mljobs.job"
GLANCE_SECONDS = 0.01  # the shortest wait on a container this process started, in place of an inspect


_CLIENTS: dict = {}


def docker_client(docker_url: str | None = None):
    """A client of the engine at `docker_url` (or DOCKER_HOST, or the local socket), one per engine per process."""
    import docker

    if docker_url in _CLIENTS:
        return _CLIENTS[docker_url]
    settings = {"base_url": docker_url} if docker_url else docker.utils.kwargs_from_env()
    try:  # the API version is read from the engine as the client is made: that is the check that it is there
        client = docker.DockerClient(version=_api_version(docker, settings), **settings)
        _CLIENTS[docker_url] = client
        return client
    except Exception as exc:  # the SDK raises several kinds for "no engine there"
        where = docker_url or os.environ.get("DOCKER_HOST") or "the local Docker engine"
        raise SubmitError(f"cannot reach {where}: {exc}") from None


def _api_version(docker, settings: dict) -> str:
    """The engine's API version from the header of its ping, capped at the newest this SDK speaks (the SDK's
    own `version="auto"` asks the slower /version, which gathers the versions of all the engine's parts)."""
    newest = docker.constants.DEFAULT_DOCKER_API_VERSION
    probe = docker.APIClient(version=newest, **settings)
    try:
        response = probe.get(f"{probe.base_url}/_ping", timeout=60)
        response.raise_for_status()
    finally:
        probe.close()
    version = response.headers.get("Api-Version")
    if version is None:  # an engine too old to say it in its ping
        return "auto"
    return min(version, newest, key=lambda v: tuple(int(part) for part in v.split(".")))


class DockerBackend:
    name = "docker"
    # the job folder mounted at one path; a container cannot follow a link to the host, so read-only inputs are
    # mounts; it cannot open the host's SQLite store, so it records through a tracking server; it runs the
    # environment's image, on the host's network
    placement = Placement(root="/mljobs/job", inputs="mount", needs_server=True, image=True)

    def __init__(self, settings: dict | None = None) -> None:
        self.docker_url = (settings or {}).get("docker_url")
        self.gpus = (settings or {}).get("gpus")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client(self.docker_url)
        return self._client

    def notes(self, plan: ExecutionPlan) -> list[str]:
        if self.docker_url is None or _on_this_host(self.docker_url):
            return []
        return [f"the Docker engine at {self.docker_url} may run on another host: its containers see this "
                f"workspace's folders only where they are at the same paths there (a shared file system), and "
                f"reach the tracking store only at an address that host can reach (a tracking server's URL in "
                f"MLFLOW_TRACKING_URI, not this workspace's server on 127.0.0.1)"]

    def prepare(self, plan: ExecutionPlan, job_dir: Path, base_dir: Path, home: Path, log: Callable[[str], None]):
        """Resolve the environment to an image (pulling or building it); the build log goes to `log`."""
        import dataclasses

        from ..environments import resolve_environment
        from .images import image_for

        build_log = open(job_dir / "user_logs" / "image_build.txt", "a", buffering=1)  # readable as it grows

        def both(text: str) -> None:
            build_log.write(text)
            log(text)

        try:
            env = resolve_environment(plan.environment, home, note=lambda text: both(f"note: {text}\n"))
            image = image_for(self.client, env, base_dir, home / "cache", both)
        finally:
            build_log.close()
        parse_docker_args(plan.resources.docker_args)  # refuse bad flags before anything starts
        return dataclasses.replace(plan, image=image, environment=env)

    def submit(self, plan: ExecutionPlan, job_dir: Path, run_identity=None) -> "DockerHandle":
        """Create the containers, then start them once `run_identity()` gives the job's MLflow run (created
        meanwhile, it reaches each container's shell through a file in the job folder: a container's environment
        is fixed when it is created)."""
        from docker.errors import APIError
        from docker.types import Mount

        settings = parse_docker_args(plan.resources.docker_args)
        extra_env = settings.pop("environment", {})
        if plan.resources.shm_size and "shm_size" not in settings:
            settings["shm_size"] = size_in_bytes(plan.resources.shm_size)
        if "device_requests" not in settings and _wants_gpu(plan, self.gpus):
            settings["device_requests"] = [gpu_request("all")]
        mounts = [Mount(plan.root, str(job_dir), type="bind")]
        mounts += [Mount(m.target, m.source, type="bind", read_only=m.read_only) for m in plan.mounts]
        labels = {JOB_LABEL: plan.name, **{k: v for k, v in plan.labels.items()}}
        containers = []
        try:
            for process in plan.processes:
                name = container_name(plan.name, process.rank, len(plan.processes))
                container_id = _create(
                    self.client, plan.image, ["sh", "-c", _SHELL, process.command, f"{plan.root}/{RUN_ENV}",
                                              str(plan.timeout or 0), f"{plan.root}/canceled", str(KILL_GRACE_SECONDS)],
                    lambda text: _append(job_dir / "user_logs" / "image_build.txt", text), name=name,
                    environment={"HOME": "/tmp", **extra_env, **process.env},
                    working_dir=f"{plan.root}/{plan.workdir}", user=f"{os.getuid()}:{os.getgid()}",
                    mounts=mounts, network_mode="host", labels={**labels, "mljobs.rank": str(process.rank)},
                    privileged=False, detach=True, **settings,
                )
                containers.append(Container(process.rank, container_id, name, process.log))
            _write_run_env(job_dir / RUN_ENV, run_identity() if run_identity else {})
            for item in containers:  # created first, started after: logs are kept from creation on
                self.client.api.start(item.id)
        except BaseException as exc:  # refused, no run to start them in, or interrupted: none is left behind
            for item in containers:
                _remove(self.client, item.id)
            if isinstance(exc, APIError):
                raise SubmitError(f"the Docker engine refused the job: {exc.explanation or exc}") from None
            raise
        return DockerHandle(str(job_dir), containers, time.time(), self.docker_url, _client=self.client, _started=True)

    def recover(self, plan: dict, job_dir: Path) -> "DockerHandle | None":
        """The handle of a job whose submitter died while it started its containers, found by their labels.
        The run's identity was written for them once they could start: those still only created are started
        now, as the submitter was about to; without it, the job never got that far and has nothing to attach to
        (its containers are removed)."""
        found = self.client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={plan['name']}"})
        logs = {process["rank"]: process["log"] for process in plan["processes"]}
        rank = {c.id: int(c.labels.get("mljobs.rank", -1)) for c in found}
        run_env = job_dir / RUN_ENV
        if sorted(rank.values()) != sorted(logs) or not run_env.is_file():
            for container in found:
                _remove(self.client, container.id)
            return None
        for container in found:
            if container.status == "created":
                self.client.api.start(container.id)
        containers = sorted((Container(rank[c.id], c.id, c.name, logs[rank[c.id]]) for c in found),
                            key=lambda c: c.rank)
        return DockerHandle(str(job_dir), containers, run_env.stat().st_mtime, self.docker_url, _client=self.client)

    def attach(self, data: dict) -> "DockerHandle":
        return DockerHandle(data["job_dir"], [Container(**c) for c in data["containers"]], data["started_at"],
                            data.get("docker_url"))


def _on_this_host(docker_url: str) -> bool:
    """Whether the engine's address is this host's own: a unix socket, or a loopback or local name."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(docker_url if "://" in docker_url else f"tcp://{docker_url}")
    if parts.scheme in ("unix", "npipe", "") or not parts.hostname:
        return True
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:  # a name: another host unless it is this one's
        import socket

        return parts.hostname in (socket.gethostname(), socket.getfqdn())


def container_name(job: str, rank: int, ranks: int) -> str:
    base = f"mljobs-{job}"[:200]
    return base if ranks == 1 else f"{base}-{rank}"


def _wants_gpu(plan: ExecutionPlan, setting) -> bool:
    if setting is not None:
        return bool(setting)
    return "gpu" in (plan.resources.instance_type or "").lower()


# The container's first process is the rank's supervisor: it reads the job's run ($1, written as its containers
# start), runs the command under bash when the image has it (as Azure ML runs it), else under sh, with stderr
# merged into stdout (in the order they were written, as the local backend's log file has them), passes a stop
# (`docker stop`'s TERM) on to every process of the container, keeps `limits.timeout` with a watchdog, and
# exits with the command's status, which the container keeps.
_SHELL = ('[ -r "$1" ] && . "$1"; exec 2>&1; mljobs_timeout=$2; mljobs_canceled=$3; mljobs_grace=$4; '
          'if command -v bash >/dev/null 2>&1; then mljobs_shell=bash; else mljobs_shell=sh; fi; '
          '$mljobs_shell -c "$0" & mljobs_child=$!; '
          "trap 'kill -TERM -1 2>/dev/null' TERM INT; " + watchdog("-1", "$mljobs_child")
          + 'while :; do wait $mljobs_child; mljobs_status=$?; kill -0 $mljobs_child 2>/dev/null || break; done; '
          + stop_watchdog() + 'exit $mljobs_status')
RUN_ENV = "run.env"


def _write_run_env(path: Path, run_env: dict[str, str]) -> None:
    """Shell lines that export the run's variables, each unless the job's own `environment_variables` set it."""
    import shlex

    path.write_text("".join(f'[ -n "${{{key}+set}}" ] || export {key}={shlex.quote(value)}\n'
                            for key, value in run_env.items()))


def _create(client, image: str, command: list[str], log: Callable[[str], None], **kwargs) -> str:
    """Create a container from the SDK's `containers.create` arguments and return its id. The SDK's own
    `create` inspects the new container to return an object, an engine round trip the job has no use for."""
    from docker.errors import ImageNotFound
    from docker.models.containers import _create_container_args

    from .images import pull_again

    arguments = _create_container_args({**kwargs, "image": image, "command": command, "version": client.api._version})
    try:
        return client.api.create_container(**arguments)["Id"]
    except ImageNotFound:  # removed since this process last saw it
        pull_again(client, image, log)
        return client.api.create_container(**arguments)["Id"]


def _append(path: Path, text: str) -> None:
    with open(path, "a") as out:
        out.write(text)


def _remove(client, container_id: str) -> None:
    from docker.errors import APIError, NotFound

    try:
        client.api.remove_container(container_id, force=True)
    except NotFound:
        pass
    except APIError:
        pass


@dataclass
class Container:
    rank: int
    id: str
    name: str
    log: str


@dataclass
class DockerHandle:
    job_dir: str
    containers: list[Container]
    started_at: float
    docker_url: str | None = None
    _client: object = field(default=None, repr=False)
    _pumps: dict = field(default_factory=dict, repr=False)
    _final: dict = field(default_factory=dict, repr=False)  # rank -> the state of its ended container
    _started: bool = field(default=False, repr=False)  # this handle started the containers (not attached to them)

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client(self.docker_url)
        return self._client

    def to_dict(self) -> dict:
        return {"backend": "docker", "job_dir": self.job_dir, "started_at": self.started_at,
                "docker_url": self.docker_url, "containers": [vars(c) for c in self.containers]}

    # -- state ----------------------------------------------------------------------------------------------
    def _state(self, item: Container) -> dict | None:
        from docker.errors import NotFound

        try:
            state = self.client.api.inspect_container(item.id)["State"]
        except NotFound:
            return None
        if state["Status"] in ("exited", "dead"):
            self._final[item.rank] = state  # an ended container's state never changes
        return state

    def poll(self, wait: float = 0.0) -> Outcome | None:
        """The job's outcome once every container ended, else None; `wait` blocks up to that long for the first
        container still running to exit. What a wait learns (still running, or exited with 0) spares an inspect
        of that container: each is an engine round trip, slow while the engine starts or stops containers."""
        pending = self._pending()
        if self._started:  # a wait of a few ms says "still running" as an inspect would, with less of the engine's time
            wait = max(wait, GLANCE_SECONDS)
        learned = self._wait_for_exit(pending[0], wait) if wait and pending else {}
        canceled = cancel_reason(self.job_dir)
        states = {c.rank: learned.get(c.rank) or self._final.get(c.rank) or self._state(c) for c in self.containers}
        running = [c for c in self.containers if states[c.rank] and states[c.rank]["Status"] in ("created", "running", "restarting")]
        if canceled and not running:
            return Outcome("Canceled", None, canceled)
        failed = {r: s for r, s in states.items() if s is None or (s["Status"] == "exited" and s["ExitCode"] != 0)}
        if failed and running:
            self._stop(running)
            running = []
        if running:
            return None
        if not failed:
            return Outcome("Completed", 0)
        rank, state = min(failed.items(), key=lambda kv: kv[0])
        where = f"rank {rank} " if len(self.containers) > 1 else ""
        if state is None:
            return Outcome("Failed", None, f"the container of {where or 'the job '}was removed from outside")
        if state.get("OOMKilled"):
            return Outcome("Failed", state["ExitCode"], f"the container {where}ran out of memory (OOMKilled)")
        return Outcome("Failed", state["ExitCode"], f"the command {where}exited with code {state['ExitCode']}")

    def _pending(self) -> list[Container]:
        return [c for c in self.containers if c.rank not in self._final]

    def _wait_for_exit(self, item: Container, seconds: float) -> dict:
        """Block until the container exits or `seconds` pass (the engine's wait returns the moment it ends); what
        that says of its state: running when the wait timed out, final when it exited with 0."""
        try:
            result = self.client.api.wait(item.id, timeout=seconds)
        except Exception as exc:  # NotFound, an engine gone and the like: an inspect says what happened
            return {item.rank: {"Status": "running"}} if _timed_out(exc) else {}
        # a wait on a container that never started also says 0: trusted only where this handle started them
        if self._started and result.get("StatusCode") == 0 and not result.get("Error"):
            self._final[item.rank] = {"Status": "exited", "ExitCode": 0}
        return {}  # a failure is inspected: it may have been OOMKilled

    def cancel(self, reason: str = "canceled") -> Outcome:
        mark_canceled(self.job_dir, reason)
        self._stop(self.containers)
        return self.poll() or Outcome("Canceled", None, reason)

    def _stop(self, containers: list[Container]) -> None:
        from docker.errors import APIError, NotFound

        for item in containers:
            try:
                self.client.api.stop(item.id, timeout=KILL_GRACE_SECONDS)
            except NotFound:
                pass
            except APIError:
                self.client.api.kill(item.id)

    def release(self, status: str, on_finish: str = "delete") -> None:
        """Remove the job's containers (after their logs are saved), as `on_finish` says."""
        self._drain()
        if on_finish == "keep" or (on_finish == "delete_on_success" and status != "Completed"):
            return
        for item in self.containers:
            _remove(self.client, item.id)

    # -- logs -----------------------------------------------------------------------------------------------
    def logs(self, since: dict | None = None, *, final: bool = False) -> Iterator[LogChunk]:
        self._start_pumps()
        if final:
            self._drain()
        files = {c.rank: Path(self.job_dir) / c.log for c in self.containers}
        return read_available(files, since or {}, final=final, prefix=len(files) > 1)

    def collect(self) -> None:
        """Copy everything the containers wrote into the job's log files (before they are uploaded); outputs
        are in the mounted job folder already."""
        self._start_pumps()
        self._drain()

    def _start_pumps(self) -> None:
        for item in self.containers:
            if item.rank not in self._pumps:
                self._pumps[item.rank] = _start_pump(self.client, item, Path(self.job_dir))

    def _drain(self, timeout: float = 30) -> None:
        """Wait for the pumps to copy what the ended containers wrote (their log streams end with them)."""
        deadline = time.time() + timeout
        for pump in self._pumps.values():
            pump.join(max(0.0, deadline - time.time()))


def _timed_out(exc: Exception) -> bool:
    """A read that timed out: the SDK raises it as requests' ReadTimeout, or (on a unix socket) as a
    ConnectionError around urllib3's ReadTimeoutError."""
    from requests.exceptions import ReadTimeout
    from urllib3.exceptions import ReadTimeoutError

    return isinstance(exc, ReadTimeout) or bool(exc.args) and isinstance(exc.args[0], ReadTimeoutError)


def _start_pump(client, item: Container, job_dir: Path) -> threading.Thread:
    thread = threading.Thread(target=_pump, args=(client, item, job_dir), daemon=True, name=f"logs-{item.name}")
    thread.start()
    return thread


def _pump(client, item: Container, job_dir: Path) -> None:
    """Append the container's log lines to its log file, resuming after the last timestamp already written.

    One pump per container writes at a time (a lock held for as long as it runs): a second follower, in this
    process or another, waits and then goes on from where the first stopped, so no line is written twice.
    """
    import fcntl

    state = job_dir / "log-positions"
    state.mkdir(exist_ok=True)
    with open(state / f"rank_{item.rank}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _copy_logs(client, item, job_dir)


def _copy_logs(client, item: Container, job_dir: Path) -> None:
    from docker.errors import APIError, NotFound

    log_path = job_dir / item.log
    position = job_dir / "log-positions" / f"rank_{item.rank}.last"
    last = int(position.read_text()) if position.is_file() else 0
    since = last // 1_000_000_000
    try:
        stream = client.api.logs(item.id, stream=True, follow=True, timestamps=True, since=since or None)
    except (NotFound, APIError):
        return
    pending = b""
    with open(log_path, "ab") as out:
        try:
            for chunk in stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                wrote = False
                for line in lines:
                    stamp, _, text = line.partition(b" ")
                    nanos = _nanos(stamp)
                    if nanos is not None and nanos <= last:
                        continue  # already written before a restart
                    out.write(text + b"\n")
                    last = nanos or last
                    wrote = True
                if wrote:
                    out.flush()
                    position.write_text(str(last))
        except (NotFound, APIError):
            pass
        if pending:
            stamp, _, text = pending.partition(b" ")
            nanos = _nanos(stamp)
            if nanos is None or nanos > last:
                out.write(text + b"\n")
                position.write_text(str(nanos or last))


def _nanos(stamp: bytes) -> int | None:
    """RFC 3339 with nanoseconds (`2026-11-26T15:24:02.12631892Z`) as integer nanoseconds since the epoch."""
    import calendar

    try:
        text = stamp.decode()
        whole, _, fraction = text.rstrip("Z").partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])
    except (ValueError, UnicodeDecodeError):
        return None
