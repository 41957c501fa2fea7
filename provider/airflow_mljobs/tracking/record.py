"""The job record in MLflow: create the run before launch, set status once, upload logs and artifacts.

Backends never see a client: they get a run id and environment variables, and this module does the I/O.
The embedded store is made whole before first use (`database.py`); a write the store refuses for a while is
asked again, then kept in the job's folder until a process can write it (`pending.py`).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..loading import collector_paused
from ..naming import path_segment
from ..spec import SubmitError
from . import tags as T
from .artifacts import artifact_store
from .database import StoreError, ensure_store, migrate_if_needed, refusal, remake_if_unused
from .pending import (REFUSAL_SECONDS, Spool, attempt, bound_waits, passing, replay_all, retry_seconds, say,
                      spool_write)
from .rest import KeyValue, RestClient, speaks
from .store import TrackingConfig


_OPEN: dict[tuple, "Tracker"] = {}


def open_tracker(config: TrackingConfig, prefer_server: bool = False) -> "Tracker":
    """One Tracker per store and process: opening a store costs a schema check, and an Airflow worker or
    `airflow dags test` runs many task instances in one process. Keyed by pid, so a forked child opens its own.

    With `prefer_server`, an embedded store is reached through the workspace's tracking server when one runs:
    a command that makes a few calls then skips loading the SQLite store. A process that makes many calls opens
    the store itself, where each call is cheaper.

    The embedded store is made (once, whole) or checked first (`database.ensure_store`); then the writes that
    wait in job folders, refused earlier, are written (`pending.replay_all`)."""
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
        if config.embedded:
            ensure_store(config.database, config.artifact_root)
        tracker = Tracker(config, uri)
        tracker.catch_up()
        _OPEN[key] = tracker
    return _OPEN[key]


class Tracker:
    """A thin layer over MLflow's client that speaks in jobs (names, Azure statuses) rather than runs.

    Against a tracking server the client is `rest.RestClient`, which spares the process MLflow's import;
    a database or folder store is opened by MLflow's own client."""

    def __init__(self, config: TrackingConfig, uri: str | None = None) -> None:
        self.config = config
        self.uri = uri or config.tracking_uri
        self._experiment_ids: dict[str, str] = {}  # name -> id: experiments are created once, and never renamed here
        self.refusal: str | None = None  # why the store last refused a write, in one line
        self._refused_until = 0.0  # until then (monotonic), writes go to their job's spool at once
        self._pending = True  # job folders may hold writes to replay (`catch_up`)
        self._next_catch_up = 0.0  # (monotonic) not before: the store refused the last one
        try:
            self.client = self._open()
        except StoreError:
            raise
        except Exception as exc:
            database = config.database
            if database and any(s in str(exc) for s in ("disk image is malformed", "file is not a database")):
                raise StoreError(refusal(database, f"is damaged ({_first_line(exc)})")) from None
            if not (database and not self.served and "out-of-date database schema" in str(exc)
                    and remake_if_unused(database, config.artifact_root, "its migration stopped half way")):
                raise SubmitError(f"cannot open the MLflow tracking store {config.tracking_uri}: "
                                  f"{_first_line(exc)}") from None
            try:
                self.client = self._open()
            except Exception as again:
                raise SubmitError(f"cannot open the MLflow tracking store {config.tracking_uri}: "
                                  f"{_first_line(again)}") from None
        if self.uri.startswith("sqlite:///"):
            _write_ahead_log(Path(self.uri[len("sqlite:///"):]))
            _tune_sql_store(self.client)

    def _open(self):
        with collector_paused():  # MLflow's modules and its SQL store load here
            if self.config.embedded and not self.served:
                migrate_if_needed(self.config.database, self.config.artifact_root)
            client = _client(self.uri)
            if not self.served:  # the workspace's server answered its health check a moment ago
                client.search_experiments(max_results=1)  # open the store now, to fail here and clearly
        return client

    # -- writes the store refuses (see pending.py) ----------------------------------------------------------
    def refusing(self) -> bool:
        """Whether the store refused a write of this process a moment ago: writes then go to the spool at once."""
        return time.monotonic() < self._refused_until

    def refused(self, exc: BaseException) -> None:
        self.refusal = re.sub(r"^\([\w.]+\)\s*", "", _first_line(exc))[:300]  # "(sqlite3.OperationalError) ..."
        self._refused_until = time.monotonic() + REFUSAL_SECONDS
        self._pending = True

    def catch_up(self) -> None:
        """Write the workspace's pending records (one attempt each) unless the store refused a moment ago: when a
        process opens the store, and before it reads, once it has seen the store refuse."""
        if not self._pending or self.refusing() or time.monotonic() < self._next_catch_up:
            return
        try:
            self._pending = replay_all(self) > 0
        except Exception as exc:  # never in the way of what the command is asked
            say(f"mljobs: could not write the pending job records yet: {_first_line(exc)}")
        if self._pending:
            self._next_catch_up = time.monotonic() + REFUSAL_SECONDS

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
        # an experiment's name is data: its folder is a single name made from it, never a path (`../../x`)
        location = f"{self.config.artifact_root}/{path_segment(name)}" if self.config.embedded else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another job: read it back
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def create_job_run(self, experiment: str, name: str, tags: dict[str, str], parent_run_id: str | None = None) -> "JobRecord":
        """The job's run, Preparing. A store that refuses it for longer than the retries last fails the submission
        in one line: with no run, there is no record to keep pending."""
        run_tags = {T.JOB_NAME: name, T.STATUS: "Preparing", T.SOURCE_NAME: name, T.SOURCE_TYPE: "JOB", **tags}
        if parent_run_id:
            run_tags["mlflow.parentRunId"] = parent_run_id

        def create():
            try:
                return self.client.create_run(self.experiment_id(experiment), tags=run_tags, run_name=name)
            except Exception as exc:  # the experiment was deleted or recreated since this process looked it up
                if passing(exc):
                    raise
                self._experiment_ids.pop(experiment, None)
                return self.client.create_run(self.experiment_id(experiment), tags=run_tags, run_name=name)

        try:
            run = attempt(create, retry_seconds())
        except Exception as exc:
            if not passing(exc):
                raise
            self.refused(exc)
            raise SubmitError(f"cannot record job '{name}': the MLflow store {self.config.tracking_uri} refuses "
                              f"writes ({self.refusal})") from None
        return JobRecord(self, run.info.run_id, run.info.experiment_id, name, run.info.artifact_uri)

    def find_job(self, name: str):
        """The MLflow run of the job called `name`, or None."""
        self.catch_up()
        runs = self.client.search_runs(self._all_experiments(), f"tags.`{T.JOB_NAME}` = '{_quote(name)}'",
                                       max_results=2)
        return runs[0] if runs else None

    def run(self, run_id: str):
        """The MLflow run `run_id` (info, tags, latest metrics)."""
        self.catch_up()
        return self.client.get_run(run_id)

    def record(self, run) -> "JobRecord":
        return JobRecord(self, run.info.run_id, run.info.experiment_id, run.data.tags.get(T.JOB_NAME, run.info.run_name),
                         run.info.artifact_uri)

    def list_jobs(self, experiment: str | None = None, status: str | None = None, max_results: int = 50,
                  parent_run_id: str | None = None, include_children: bool = False, where: dict | None = None):
        """Jobs newest first; `where` adds tag equalities."""
        self.catch_up()
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
    """One job's run: what the engine writes while a job prepares, runs and ends.

    Each write is asked again while the store refuses it in passing, then kept pending in the job's folder
    (`job_dir`, by default `<workspace>/jobs/<name>`) until a process can write it: see pending.py. A write
    made while earlier ones are pending waits behind them, so the store sees them in the order they were made."""

    tracker: Tracker
    run_id: str
    experiment_id: str
    name: str
    artifact_uri: str | None = None  # known when the run was just created or read: uploads need not look it up
    job_dir: Path | None = None  # where its pending writes wait; by default the workspace's folder of the job

    @classmethod
    def from_entry(cls, tracker: Tracker, entry: dict, job_dir: Path) -> "JobRecord":
        return cls(tracker, entry["run_id"], entry["experiment_id"], entry["name"], entry.get("artifact_uri"), job_dir)

    @property
    def client(self):
        return self.tracker.client

    @property
    def folder(self) -> Path:
        return Path(self.job_dir) if self.job_dir else self.tracker.config.home / "jobs" / self.name

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

    def pending(self) -> bool:
        """Whether writes of this record wait in its job folder for the store to take them."""
        return Spool(self.folder).pending()

    # -- writes ------------------------------------------------------------------------------------------------
    def set_tags(self, tags: dict[str, str], params: dict | None = None) -> None:
        """Tags, and parameters if given, in one transaction (MLflow takes at most 100 parameters a batch)."""
        self._write({"op": "tags", "tags": {k: str(v) for k, v in tags.items()},
                     "params": {k: str(v)[:6000] for k, v in (params or {}).items()}})

    def set_status(self, status: str, reason: str | None = None, exit_code: int | None = None,
                   current: str | None = None, params: dict | None = None) -> bool:
        """Move to `status`; a terminal status is written once, and never over another terminal one.

        `current` is the status the caller has just read, which saves reading it again; `params` are written in
        the same transaction. When the store cannot be read, or writes of the record are pending, the terminal
        status is checked when it is written."""
        checked = current is not None or status not in T.TERMINAL
        if status in T.TERMINAL and current is None and not self.pending():
            try:
                current, checked = self.status(), True
            except Exception as exc:
                if not passing(exc):
                    raise
        if status in T.TERMINAL and current in T.TERMINAL:
            return False
        self._write({"op": "status", "status": status, "reason": reason[:5000] if reason else None,
                     "exit_code": exit_code, "params": {k: str(v)[:6000] for k, v in (params or {}).items()},
                     "end_time": int(time.time() * 1000), "checked": checked})
        return True

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self._write({"op": "file", "path": str(path), "artifact_path": artifact_path})

    def log_dir(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir() and any(path.iterdir()):
            self._write({"op": "dir", "path": str(path), "artifact_path": artifact_path})

    def log_text(self, text: str, artifact_file: str) -> None:
        self._write({"op": "text", "text": text, "artifact_file": artifact_file})

    def _write(self, entry: dict) -> None:
        entry = {**entry, "store": self.tracker.config.tracking_uri, "run_id": self.run_id,
                 "experiment_id": self.experiment_id, "name": self.name, "artifact_uri": self.artifact_uri}
        if self.pending() or self.tracker.refusing():
            spool_write(self, entry, None)
            return
        try:
            attempt(lambda: self.apply(entry), retry_seconds())
        except Exception as exc:
            if not passing(exc):
                raise
            self.tracker.refused(exc)
            spool_write(self, entry, exc)

    def apply(self, entry: dict, replaying: bool = False) -> None:
        """Make one write (as `_write` describes it) in the store, now. Replayed, a status is written only over a
        status that is not terminal (the parameters that came with it, in any case)."""
        op = entry["op"]
        if op == "tags":
            self._log_batch(entry["tags"], entry.get("params"))
        elif op == "status":
            status, params = entry["status"], entry.get("params")
            if replaying or not entry.get("checked", True):
                if self.status() in T.TERMINAL:
                    if params:
                        self._log_batch({}, params)
                    return
            tags = {T.STATUS: status}
            if entry.get("reason"):
                tags[T.REASON] = entry["reason"]
            if entry.get("exit_code") is not None:
                tags[T.EXIT_CODE] = str(entry["exit_code"])
            self._log_batch(tags, params)
            if status in T.TERMINAL:  # the run was created RUNNING; only its end changes MLflow's own status
                self.client.set_terminated(self.run_id, T.MLFLOW_STATUS[status], end_time=entry["end_time"])
        elif op in ("file", "dir"):  # replayed: from the links kept when it was refused (pending.Spool._snapshot)
            source = Path(entry.get("copy") or entry["path"])
            if op == "file":
                source = source / Path(entry["path"]).name if entry.get("copy") else source
                if not replaying or source.is_file():  # a file removed since (and not kept) has nothing to send
                    self._artifacts.log_artifact(str(source), entry.get("artifact_path"))
            elif not replaying or source.is_dir():
                self._artifacts.log_artifacts(str(source), entry.get("artifact_path"))
        elif op == "text":
            folder, _, file_name = entry["artifact_file"].rpartition("/")
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / file_name
                path.write_text(entry["text"], encoding="utf-8")
                self._artifacts.log_artifact(str(path), folder or None)
        else:
            raise ValueError(f"unknown pending write {op!r}")

    def _log_batch(self, tags: dict[str, str], params: dict | None) -> None:
        if isinstance(self.client, RestClient):
            Param = RunTag = KeyValue
        else:
            from mlflow.entities import Param, RunTag
        tag_items = [RunTag(k, v) for k, v in tags.items()]
        param_items = [Param(k, v) for k, v in (params or {}).items()]
        for start in range(0, max(len(param_items), 1), 100):
            batch = param_items[start:start + 100]
            if tag_items or batch:
                self.client.log_batch(self.run_id, params=batch, tags=tag_items)
            tag_items = []

    # -- reads -------------------------------------------------------------------------------------------------
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


def _tune_sql_store(client) -> None:
    """Let this process's connections to the SQLite store sync its write-ahead log at checkpoints rather than at
    every commit (`synchronous=NORMAL`), for cheaper writes. The store stays consistent whatever happens; only a
    power loss of the machine can undo its last commits. And bound how long a write waits for another writer's
    lock (`pending.bound_waits`)."""
    from sqlalchemy import event

    engine = getattr(getattr(getattr(client, "_tracking_client", None), "store", None), "engine", None)
    if engine is None:  # another MLflow's layout: the store keeps SQLite's default
        return
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA synchronous=NORMAL"))
    bound_waits(engine)
    engine.dispose()  # the connection that checked the schema reconnects with it


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _quote(value: str) -> str:
    return value.replace("'", "\\'")
