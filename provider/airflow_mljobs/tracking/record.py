"""The job record in MLflow: create the run before launch, set status once, upload logs and artifacts.

Backends never see a client: they get a run id and environment variables, and this module does the I/O.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..loading import collector_paused
from ..spec import SubmitError
from . import tags as T
from .artifacts import artifact_store
from .rest import KeyValue, RestClient, speaks
from .store import TrackingConfig


_OPEN: dict[tuple, "Tracker"] = {}


def open_tracker(config: TrackingConfig, prefer_server: bool = False) -> "Tracker":
    """One Tracker per store and process: opening a store costs a schema check, and an Airflow worker or
    `airflow dags test` runs many task instances in one process. Keyed by pid, so a forked child opens its own.

    With `prefer_server`, an embedded store is reached through the workspace's tracking server when one runs:
    a command that makes a few calls then skips loading the SQLite store. A process that makes many calls opens
    the store itself, where each call is cheaper."""
    uri = config.tracking_uri
    if config.embedded:
        try:
            config.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SubmitError(f"cannot open the MLflow tracking store {uri}: {exc}") from None
        if prefer_server:
            uri = _live_server(config) or uri
    key = (os.getpid(), uri, config.artifact_root)
    if key not in _OPEN:
        _OPEN[key] = Tracker(config, uri)
    return _OPEN[key]


class Tracker:
    """A thin layer over MLflow's client that speaks in jobs (names, Azure statuses) rather than runs.

    Against a tracking server the client is `rest.RestClient`, which spares the process MLflow's import;
    a database or folder store is opened by MLflow's own client."""

    def __init__(self, config: TrackingConfig, uri: str | None = None) -> None:
        self.config = config
        self.uri = uri or config.tracking_uri
        self._experiment_ids: dict[str, str] = {}  # name -> id: experiments are created once, and never renamed here
        try:
            with collector_paused():  # MLflow's modules and its SQL store load here
                self.client = _client(self.uri)
                if not self.served:  # the workspace's server answered its health check a moment ago
                    self.client.search_experiments(max_results=1)  # open the store now, to fail here and clearly
        except Exception as exc:
            raise SubmitError(f"cannot open the MLflow tracking store {config.tracking_uri}: {_first_line(exc)}") from None
        if self.uri.startswith("sqlite:///"):
            _write_ahead_log(Path(self.uri[len("sqlite:///"):]))
            _sync_at_checkpoints(self.client)

    @property
    def served(self) -> bool:
        """Whether this embedded store is reached through the workspace's tracking server."""
        return self.config.embedded and self.uri != self.config.tracking_uri

    # -- experiments and runs ---------------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        if name not in self._experiment_ids:
            self._experiment_ids[name] = self._find_or_create_experiment(name)
        return self._experiment_ids[name]

    def _find_or_create_experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.config.artifact_root}/{name}" if self.config.embedded else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another job: read it back
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def create_job_run(self, experiment: str, name: str, tags: dict[str, str], parent_run_id: str | None = None) -> "JobRecord":
        run_tags = {T.JOB_NAME: name, T.STATUS: "Preparing", T.SOURCE_NAME: name, T.SOURCE_TYPE: "JOB", **tags}
        if parent_run_id:
            run_tags["mlflow.parentRunId"] = parent_run_id
        try:
            run = self.client.create_run(self.experiment_id(experiment), tags=run_tags, run_name=name)
        except Exception:  # the experiment was deleted or recreated since this process looked it up: look again
            self._experiment_ids.pop(experiment, None)
            run = self.client.create_run(self.experiment_id(experiment), tags=run_tags, run_name=name)
        return JobRecord(self, run.info.run_id, run.info.experiment_id, name, run.info.artifact_uri)

    def find_job(self, name: str):
        """The MLflow run of the job called `name`, or None."""
        runs = self.client.search_runs(self._all_experiments(), f"tags.`{T.JOB_NAME}` = '{_quote(name)}'",
                                       max_results=2)
        return runs[0] if runs else None

    def run(self, run_id: str):
        """The MLflow run `run_id` (info, tags, latest metrics)."""
        return self.client.get_run(run_id)

    def record(self, run) -> "JobRecord":
        return JobRecord(self, run.info.run_id, run.info.experiment_id, run.data.tags.get(T.JOB_NAME, run.info.run_name),
                         run.info.artifact_uri)

    def list_jobs(self, experiment: str | None = None, status: str | None = None, max_results: int = 50,
                  parent_run_id: str | None = None, include_children: bool = False, where: dict | None = None):
        """Jobs newest first; `where` adds tag equalities."""
        if experiment:
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                return []
            experiments = [found.experiment_id]
        else:
            experiments = self._all_experiments()
        clauses = [f"tags.`{T.JOB_NAME}` != ''"]
        if status:
            clauses.append(f"tags.`{T.STATUS}` = '{_quote(status)}'")
        if parent_run_id:
            clauses.append(f"tags.`mlflow.parentRunId` = '{_quote(parent_run_id)}'")
        clauses += [f"tags.`{key}` = '{_quote(str(value))}'" for key, value in (where or {}).items()]
        runs = self.client.search_runs(experiments, " and ".join(clauses), max_results=max_results,
                                       order_by=["attributes.start_time DESC"])
        if not include_children and not parent_run_id:
            runs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        return runs

    def _all_experiments(self) -> list[str]:
        return [e.experiment_id for e in self.client.search_experiments()]

    def download_uri(self, uri: str, destination: Path) -> Path:
        """Fetch `runs:/...`, `mlflow-artifacts:/...` or `models:/...` into `destination`."""
        with collector_paused():
            from mlflow.artifacts import download_artifacts

        destination.mkdir(parents=True, exist_ok=True)
        return Path(download_artifacts(artifact_uri=uri, dst_path=str(destination), tracking_uri=self.uri))


@dataclass
class JobRecord:
    """One job's run: what the engine writes while a job prepares, runs and ends."""

    tracker: Tracker
    run_id: str
    experiment_id: str
    name: str
    artifact_uri: str | None = None  # known when the run was just created or read: uploads need not look it up

    @property
    def client(self):
        return self.tracker.client

    @cached_property
    def _artifacts(self):
        """Where the run's files go, from its location: known when the run was just created or read, otherwise
        read once here."""
        location = self.artifact_uri or self.client.get_run(self.run_id).info.artifact_uri
        return artifact_store(location, self.tracker.uri, self.client)

    def tags(self) -> dict[str, str]:
        return self.client.get_run(self.run_id).data.tags

    def status(self) -> str:
        return self.tags().get(T.STATUS, "NotStarted")

    def set_tags(self, tags: dict[str, str], params: dict | None = None) -> None:
        """Tags, and parameters if given, in one transaction (MLflow takes at most 100 parameters a batch)."""
        if isinstance(self.client, RestClient):
            Param = RunTag = KeyValue
        else:
            from mlflow.entities import Param, RunTag
        tag_items = [RunTag(k, str(v)) for k, v in tags.items()]
        param_items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        for start in range(0, max(len(param_items), 1), 100):
            batch = param_items[start:start + 100]
            if tag_items or batch:
                self.client.log_batch(self.run_id, params=batch, tags=tag_items)
            tag_items = []

    def set_status(self, status: str, reason: str | None = None, exit_code: int | None = None,
                   current: str | None = None, params: dict | None = None) -> bool:
        """Move to `status`; a terminal status is written once, and never over another terminal one.

        `current` is the status the caller has just read, which saves reading it again; `params` are written in
        the same transaction."""
        if status in T.TERMINAL and (current or self.status()) in T.TERMINAL:
            return False
        extra = {T.STATUS: status}
        if reason:
            extra[T.REASON] = reason[:5000]
        if exit_code is not None:
            extra[T.EXIT_CODE] = str(exit_code)
        self.set_tags(extra, params)
        if status in T.TERMINAL:  # the run was created RUNNING; only its end changes MLflow's own status
            self.client.set_terminated(self.run_id, T.MLFLOW_STATUS[status], end_time=int(time.time() * 1000))
        return True

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self._artifacts.log_artifact(str(path), artifact_path)

    def log_dir(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir() and any(path.iterdir()):
            self._artifacts.log_artifacts(str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        folder, _, file_name = artifact_file.rpartition("/")
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / file_name
            path.write_text(text, encoding="utf-8")
            self.log_file(path, folder or None)

    def metrics(self) -> dict[str, float]:
        return dict(self.client.get_run(self.run_id).data.metrics)

    def download(self, artifact_path: str, destination: Path) -> Path:
        destination.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(self.run_id, artifact_path, str(destination)))

    def artifacts(self, path: str | None = None) -> list[str]:
        return [f.path for f in self.client.list_artifacts(self.run_id, path)]


def _client(uri: str):
    if speaks(uri):
        return RestClient(uri)
    from mlflow.tracking import MlflowClient  # heavy: imported on first use, never at module import

    return MlflowClient(tracking_uri=uri)


def _live_server(config: TrackingConfig) -> str | None:
    """The workspace's tracking server when one runs: talking to it skips opening the SQLite store."""
    from .server import server_status

    state = server_status(config.home)
    return state["url"] if state else None


def _write_ahead_log(database: Path) -> None:
    """Put the embedded SQLite store in write-ahead-log mode (kept in the file): the engine, the tracking
    server and jobs' own `mlflow` calls write it at once, and readers then never wait for a writer."""
    import sqlite3

    try:
        with sqlite3.connect(database, timeout=1) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.close()
    except sqlite3.Error:  # busy or read-only: the store works as it is
        pass


def _sync_at_checkpoints(client) -> None:
    """Let this process's connections to the SQLite store sync its write-ahead log at checkpoints rather than at
    every commit (`synchronous=NORMAL`), for cheaper writes. The store stays consistent whatever happens; only a
    power loss of the machine can undo its last commits."""
    from sqlalchemy import event

    engine = getattr(getattr(getattr(client, "_tracking_client", None), "store", None), "engine", None)
    if engine is None:  # another MLflow's layout: the store keeps SQLite's default
        return
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA synchronous=NORMAL"))
    engine.dispose()  # the connection that checked the schema reconnects with it


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _quote(value: str) -> str:
    return value.replace("'", "\\'")
