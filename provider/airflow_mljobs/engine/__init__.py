"""Submit, follow, cancel, finalize and find jobs: the one code path the CLI and Airflow both use.

A job goes through stages, each in a module of its own where it is more than a few lines:
- prepare: load and validate the YAML, resolve the compute (once), build the plan (once), stage the job folder;
- start: create the MLflow run (Preparing) while the backend prepares and submits, then Running;
- follow (`follow.py`): log lines, time limits, live ./logs;
- finalize (`finalize.py`): outputs and logs uploaded, Completed, Failed or Canceled, written once;
- queries: show, list, download.
Which job a submitter's try runs (names, retries, ownership) is `names.py`.

A job's name is its identity: submitting a name that is running attaches to it; one that has ended is an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .. import compute as computes
from ..backends import Outcome, get_backend
from ..launchers import launcher_for
from ..naming import check_name, generate_name
from ..plan import ExecutionPlan, Mount, build_plan, with_run
from ..processes import note_this_process, noted_process
from ..spec import Document, JobLost, NotRunnable, SubmitError, load, load_job_dict
from ..spec.dump import dump_yaml
from ..spec.model import CommandJob
from ..staging import git_info, prepare_job_folder
from ..tracking import JobRecord, replay_pending, resolve_tracking
from ..tracking import tags as T
from .finalize import finalize, record_unstarted
from .follow import Follower
from .jobs import JobResult, Submission, describe
from .overrides import input_overrides, merge_overrides

__all__ = ["Engine", "Follower", "JobResult", "Submission", "describe"]

SUBMITTER = "submitter"  # in a job folder: the pid and start time of the process that submitted the job
COMPUTE_SETTINGS = "compute_settings"  # in plan.json: the settings given over the compute's (an engine URL)

# MLflow reports usage to its makers unless one of these is set; a user's opt-out follows their jobs into containers
TELEMETRY_OPT_OUTS = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")



class Engine:
    """Jobs in one workspace (job folders, input cache, and the tracking store or server it points at)."""

    def __init__(self, home: str | Path | None = None, tracking_uri: str | None = None,
                 prefer_server: bool = False) -> None:
        """`prefer_server`: for a command that makes a few calls and exits (see `open_tracker`)."""
        self.config = resolve_tracking(home, tracking_uri)
        self.prefer_server = prefer_server
        self._tracker = None

    @property
    def tracker(self):
        if self._tracker is None:
            from ..tracking import open_tracker

            self._tracker = open_tracker(self.config, prefer_server=self.prefer_server)
        return self._tracker

    @property
    def home(self) -> Path:
        return self.config.home

    def job_dir(self, name: str) -> Path:
        return self.home / "jobs" / check_name(name)

    # -- loading and planning ------------------------------------------------------------------------------
    def load(self, job: str | Path | dict, overrides=None, *, inputs: dict | None = None,
             compute: str | None = None, base_dir: str | Path | None = None) -> Document:
        """Load a job from a path or a mapping; `inputs` and `compute` are overrides like `--set`.

        A string given for a declared data input sets its path; a string for an integer, number or boolean
        input is read as JSON (so "3" from a template is 3).
        """

        def read(extra):
            merged = merge_overrides(overrides, extra, compute)
            if isinstance(job, dict):
                return load_job_dict(job, overrides=merged, base_dir=base_dir)
            return load(job, merged, expect={"command", "sweep"})

        document = read(None)
        return read(input_overrides(document, inputs)) if inputs else document

    def check(self, document: Document) -> None:
        """Raise SpecError, located, for what keeps the job from starting here (see `preflight`)."""
        from ..preflight import check

        check(document, self.home)

    def plan(self, document: Document, *, name: str | None = None) -> ExecutionPlan:
        """The job's plan on its compute, as `--dry-run` prints it; the run's identity is filled in at submit."""
        job = _command_job(document)
        target = computes.resolve(job.compute, self.home)
        backend = get_backend(computes.backend_name(target), target.settings)
        plan = self._build(job, target, backend, check_name(name or job.name or generate_name()))
        return with_run(plan, {"MLFLOW_TRACKING_URI": self.config.tracking_uri,
                               "MLFLOW_RUN_ID": "<created at submit>", "MLFLOW_EXPERIMENT_ID": "<created at submit>"})

    def _build(self, job: CommandJob, target, backend, name: str) -> ExecutionPlan:
        """The plan, as the backend's placement sees the job: its folder, and where its instances meet."""
        placement, nodes = backend.placement, job.trial.resources.instance_count
        hosts, port = placement.addresses(name, nodes, launcher_for(job.trial.distribution).ports(nodes))
        return build_plan(job, target, name=name, backend=backend.name, root=placement.job_root(self.job_dir(name)),
                          tracking_env={}, hosts=hosts, master_port=port)

    # -- submit ------------------------------------------------------------------------------------------------
    def submit(self, document: Document, *, name: str | None = None, experiment_name: str | None = None,
               tags: dict[str, str] | None = None, parent_run_id: str | None = None,
               log: Callable[[str], None] | None = None, compute_settings: dict | None = None,
               params: dict[str, str] | None = None) -> Submission:
        """Start the job (or attach to the running job of that name) and return once it runs.

        `params` are logged on the run beside the literal inputs (a sweep trial's hyperparameters); `log`
        receives what happens before the job starts (an image build, for containers); `compute_settings`
        go over the compute's own (an Airflow docker connection's engine URL, for example).
        """
        job = _command_job(document)
        name = check_name(name or job.name or generate_name())
        self.check(document)  # before the store is opened: a job that cannot start fails fast and leaves no record
        target = computes.resolve(job.compute, self.home)
        compute_settings = compute_settings or {}
        backend = get_backend(computes.backend_name(target), {**target.settings, **compute_settings})
        if self.prefer_server and self.config.embedded and backend.placement.needs_server:
            from ..tracking.server import server_url

            server_url(self.config)  # needed anyway; started before the store is opened, it spares the MLflow import
        existing = self.find(name)
        if existing is not None:
            status = existing.data.tags.get(T.STATUS, "NotStarted")
            if status not in T.TERMINAL:
                try:
                    return self.attach(name)
                except JobLost as lost:
                    raise NotRunnable(f"{lost}; job names are unique, give another --name") from None
            raise NotRunnable(f"a job named '{name}' already ran ({status}); job names are unique, "
                              f"give another --name")
        if experiment_name:
            job = dataclasses.replace(job, experiment_name=experiment_name)
            document = dataclasses.replace(document, model=job)
        draft = self._build(job, target, backend, name)
        job_dir = self.job_dir(name)
        _clear_leftover(job_dir)
        staged = prepare_job_folder(draft, job_dir, self.home / "cache", links=backend.placement.inputs == "link",
                                    fetch_mlflow=lambda uri, dst: self.tracker.download_uri(uri, dst),
                                    on_made=lambda: note_this_process(job_dir / SUBMITTER))
        # The run is created while the backend prepares (an image checked or built, a container created): the
        # backend asks for the run's identity only when it starts the job's processes.
        with ThreadPoolExecutor(max_workers=2) as pool:
            creating = pool.submit(self.tracker.create_job_run, draft.experiment_name, name,
                                   self._run_tags(document, draft, tags), parent_run_id)
            starting, failure = None, None
            try:
                ready, uri = self._ready(backend, draft, job_dir, job.base_dir, log or (lambda text: None))
                plan = self._final_plan(ready, backend, staged, tags, uri)
                starting = pool.submit(self._start, backend, plan, job_dir, creating, compute_settings)
            except BaseException as exc:  # recorded on the run below; an interrupt (Ctrl-C) too
                failure = exc
            try:
                record = creating.result()
            except BaseException:  # no run (the backend then removes what it made), or an interrupt
                import shutil

                if starting is not None:
                    with contextlib.suppress(Exception):
                        handle = starting.result().handle
                        handle.cancel("interrupted")
                        handle.release("Canceled")
                shutil.rmtree(job_dir, ignore_errors=True)
                raise
            notes = [staged.snapshot.describe(), *backend.notes(draft)]
            params = {**{f"inputs.{i.name}": i.value for i in draft.inputs if i.kind == "literal"}, **(params or {})}
            job_yaml = dump_yaml(document.data)
            try:
                if failure is not None:
                    raise failure
                submission = self._started(starting, record, params, job_yaml)
            except BaseException as exc:
                reason = self._never_started(record, job_dir, job_yaml, params, exc)
                if not isinstance(exc, Exception):  # an interrupt goes on up
                    raise
                raise SubmitError(f"job '{name}' failed before it started: {reason}") from None
        return dataclasses.replace(submission, notes=notes)

    def _start(self, backend, plan: ExecutionPlan, job_dir: Path, creating, compute_settings: dict) -> Submission:
        """Start the job's processes and save their handle the moment the backend returns it: a submitter
        that dies from then on (a worker killed) leaves a job that a retry attaches to."""
        handle = backend.submit(plan, job_dir, lambda: self._run_identity(creating, plan, job_dir, compute_settings))
        record = creating.result()
        submission = Submission(plan.name, record.run_id, record.experiment_id, job_dir, handle, plan.timeout,
                                time.time(), artifact_uri=record.artifact_uri)
        self._save(submission)
        return submission

    @staticmethod
    def _run_identity(creating, plan: ExecutionPlan, job_dir: Path, compute_settings: dict) -> dict[str, str]:
        """The run's identity for the job's processes, once the run exists. The plan is saved with it, and with
        the settings given over the compute's (an Airflow docker connection's engine), where the job is found
        again if its submitter dies before it saves the handle."""
        record = creating.result()
        identity = {"MLFLOW_RUN_ID": record.run_id, "MLFLOW_EXPERIMENT_ID": record.experiment_id}
        saved = {**with_run(plan, identity).to_dict(), COMPUTE_SETTINGS: compute_settings}
        (job_dir / "plan.json").write_text(json.dumps(saved, indent=1))
        return identity

    @staticmethod
    def _never_started(record, job_dir: Path, job_yaml: str, params: dict, exc: BaseException) -> str:
        """Record a job that ended before it started: Failed with the error, or Canceled by an interrupt."""
        interrupted = not isinstance(exc, Exception)
        status = "Canceled" if interrupted else "Failed"
        reason = ("interrupted while preparing" if interrupted else
                  str(exc) if isinstance(exc, SubmitError) else f"could not start: {exc}")
        record.log_text(job_yaml, "job.yml")
        record_unstarted(record, job_dir, status, reason, "Preparing", params)
        return reason

    def _ready(self, backend, draft: ExecutionPlan, job_dir: Path, base_dir: Path, log) -> tuple[ExecutionPlan, str]:
        """What the job needs besides its run: the backend's preparation (an image, for containers: its
        `image` and `environment` resolved), and the tracking URI its processes use."""
        ready = backend.prepare(draft, job_dir, base_dir, self.home, log)
        uri = self.config.tracking_uri
        if backend.placement.needs_server:
            from ..tracking.server import server_url

            # the workspace's server when the engine already records through it, else started now if need be
            uri = self.tracker.uri if self.tracker.served else server_url(self.config)
        return ready, uri

    @staticmethod
    def _started(starting, record, params: dict, job_yaml: str) -> Submission:
        """The started job, once its YAML, Running status and parameters are written while it starts (the writes
        overlap a container's start). A job whose status cannot be written is stopped."""
        try:
            record.log_text(job_yaml, "job.yml")
            record.set_status("Running", params=params)
        except BaseException as exc:  # an interrupt too: nothing is left running
            try:
                handle = starting.result().handle
                handle.cancel("its status could not be recorded" if isinstance(exc, Exception) else "interrupted")
                handle.release("Canceled")
            except Exception:  # it did not start either: the first error is the one to report
                pass
            raise
        return starting.result()

    def find(self, name: str):
        """The run of the job called `name`, or None: is the name taken? The store is searched unless the name
        is free here (`free_here`)."""
        tracker = self.tracker  # opened first: an unusable store is the error to report, before any folder is made
        if self.free_here(name):
            return None
        return tracker.find_job(name)

    def free_here(self, name: str) -> bool:
        """Whether no job can hold `name`, seen without opening the store: every job of the embedded store has
        its folder in this workspace, made (exclusively) before its run. Another store may hold jobs submitted
        from other workspaces: only a search tells (False)."""
        return self.config.embedded and not self.job_dir(name).exists()

    def _final_plan(self, ready: ExecutionPlan, backend, staged, tags, uri: str) -> ExecutionPlan:
        """The prepared plan with the tracking store in every rank's environment (the run's identity joins it
        when the run exists), what the backend must mount, and the labels that identify the job."""
        mounts = list(staged.mounts)
        env = {"MLFLOW_TRACKING_URI": uri}
        if backend.placement.needs_server:  # a local job inherits the submitter's environment, a container its opt-outs
            env.update({k: os.environ[k] for k in TELEMETRY_OPT_OUTS if k in os.environ})
            if self.config.embedded:  # artifacts are written straight into the artifact root, seen at the same path
                root = str(self.home / "artifacts")
                mounts.append(Mount(root, root, read_only=False))
        labels = {"mljobs.job": ready.name,
                  **{k: str(v) for k, v in (tags or {}).items() if k.startswith("mljobs.airflow.")}}
        return with_run(dataclasses.replace(ready, mounts=tuple(mounts), labels=labels), env)

    def _run_tags(self, document: Document, plan: ExecutionPlan, extra: dict | None) -> dict[str, str]:
        job = document.model
        tags = {T.JOB_TYPE: job.type, T.COMPUTE: plan.compute, T.BACKEND: plan.backend,
                T.JOB_DIR: str(self.job_dir(plan.name))}
        tags.update({k: str(v) for k, v in job.tags.items()})
        if job.description:
            tags[T.NOTE] = job.description
        code = Path(plan.code) if plan.code else job.base_dir
        git = git_info(code.parent if code.is_file() else code)  # `code: train.py`, one file
        for key, tag in (("commit", T.GIT_COMMIT), ("branch", T.GIT_BRANCH), ("remote", T.GIT_REPO),
                         ("dirty", T.GIT_DIRTY)):
            if key in git:
                tags[tag] = git[key]
        tags.update(extra or {})
        return tags

    def _save(self, submission: Submission) -> None:
        data = submission.to_dict()
        (submission.job_dir / "handle.json").write_text(json.dumps(data, indent=1))

    # -- attach, follow, finalize ----------------------------------------------------------------------------
    def attach(self, name: str) -> Submission:
        """The running (or ended but not yet finalized) job called `name`."""
        run = self.tracker.find_job(name)
        if run is None:
            raise SubmitError(f"no job named '{name}'")
        job_dir = self._folder_of(run, name)
        replay_pending(self.tracker, job_dir)  # writes refused earlier, in order, before this process adds its own
        saved = job_dir / "handle.json"
        if not saved.is_file():
            self._find_again(name, run, job_dir)
        data = json.loads(saved.read_text())
        handle = get_backend(data["handle"]["backend"]).attach(data["handle"])
        return Submission(name, data["run_id"], data["experiment_id"], job_dir, handle, data.get("timeout"),
                          data["started_at"], reattached=True, artifact_uri=data.get("artifact_uri"))

    def _folder_of(self, run, name: str) -> Path:
        """The job's folder as its record names it (a workspace elsewhere, on a shared store), trusted only as a
        `jobs/<name>` folder: a job's own code can write its run's tags."""
        tagged = run.data.tags.get(T.JOB_DIR)
        if tagged and Path(tagged).name == name and Path(tagged).parent.name == "jobs":
            return Path(tagged)
        return self.job_dir(name)

    def _find_again(self, name: str, run, job_dir: Path) -> None:
        """A job whose folder holds no handle: its submitter is still starting it, or died before it saved the
        handle. Then the backend finds the job's processes from what they left (containers carry the job's name)
        and their handle is saved now; or there are none (it died during an image build, say), and the job is
        lost: it is recorded Failed, so that the name's next user (a retry) starts afresh. Raises when there is
        nothing to attach to."""
        tags, submitter = run.data.tags, noted_process(job_dir / SUBMITTER)
        if T.BACKEND not in tags or submitter is None:
            raise SubmitError(f"job '{name}' has no handle in {job_dir}: it was started on another machine, or its "
                              f"folder was removed")
        pid, alive = submitter
        if alive:
            raise SubmitError(f"job '{name}' is still starting (process {pid} is starting it): try again in a moment")
        plan_file, handle = job_dir / "plan.json", None
        if plan_file.is_file():  # written as the processes were about to start
            plan = json.loads(plan_file.read_text())
            settings = {**computes.resolve(tags.get(T.COMPUTE, "local"), self.home).settings,
                        **plan.get(COMPUTE_SETTINGS, {})}
            handle = get_backend(tags[T.BACKEND], settings).recover(plan, job_dir)
        if handle is None:
            reason = f"lost: the process that submitted it (pid {pid}) died before the job started"
            record_unstarted(self.tracker.record(run), job_dir, "Failed", reason, tags.get(T.STATUS))
            raise JobLost(f"job '{name}' was {reason}; it is recorded Failed")
        self._save(Submission(name, run.info.run_id, run.info.experiment_id, job_dir, handle, plan.get("timeout"),
                              handle.started_at, artifact_uri=run.info.artifact_uri))

    def follow(self, submission: Submission, write: Callable[[str], None] | None = None,
               since: dict | None = None, on_token: Callable[[dict], None] | None = None,
               poll_interval: float = 0.1) -> Outcome:
        """Stream the job's log lines to `write` until it ends; enforce `limits.timeout`; upload ./logs."""
        return self.follower(submission, write, since).run(poll_interval, on_token)

    def follower(self, submission: Submission, write: Callable[[str], None] | None = None,
                 since: dict | None = None, **limits) -> Follower:
        """A follower of the job that uploads its ./logs as it runs (`limits`: a deadline, see Follower)."""
        return Follower(submission, write, since, upload=self._upload_live_logs, **limits)

    def wait(self, submission: Submission) -> JobResult:
        return self.finalize(submission, self.follow(submission))

    def finalize(self, submission: Submission, outcome: Outcome | None = None, on_finish: str = "delete",
                 wait: bool = True) -> JobResult | None:
        """Upload what the job left and write its terminal status, once (see `finalize.py`)."""
        return finalize(self, submission, outcome, on_finish, wait)

    def _upload_live_logs(self, submission: Submission) -> None:
        try:
            record = JobRecord(self.tracker, submission.run_id, submission.experiment_id, submission.name,
                               job_dir=submission.job_dir)
            record.log_dir(submission.job_dir / "wd" / "logs", "logs")
        except Exception as exc:  # a slow or busy store must not stop the job
            import sys

            print(f"mljobs: could not upload ./logs yet: {exc}", file=sys.stderr)

    def cancel(self, name: str, reason: str = "canceled by user") -> JobResult:
        submission = self.attach(name)
        result_file = submission.job_dir / "result.json"
        if result_file.is_file():
            return JobResult(**json.loads(result_file.read_text()))
        outcome = submission.handle.poll() or submission.handle.cancel(reason)  # one that ended keeps its end
        return self.finalize(submission, outcome)

    def stop(self, submission: Submission, reason: str, on_finish: str = "delete") -> None:
        """Cancel a job this process follows and record its end, without waiting for a finalizer at work: called
        from signal handlers and interrupts, which may have struck this very process while it finalized."""
        outcome = submission.handle.cancel(reason)
        self.finalize(submission, outcome, on_finish=on_finish, wait=False)

    # -- queries --------------------------------------------------------------------------------------------------
    def job(self, name: str):
        """The run of the job called `name` as it truly stands (see `reconcile`), or None."""
        run = self.tracker.find_job(name)
        return None if run is None else self.reconcile(run)

    def reconcile(self, run):
        """`run`, with its end recorded now if its job ended while nobody followed it (a killed `--stream`, a
        worker that died): whoever reads a job sees its true status, never a stale Running. A job whose folder is
        on another machine, or that is still starting, is left as its record says."""
        tags = run.data.tags
        if tags.get(T.STATUS, "NotStarted") in T.TERMINAL:
            return run
        if tags.get(T.JOB_TYPE) == "sweep":
            from ..sweeps import reconcile_sweep

            return reconcile_sweep(self, run)
        name = tags.get(T.JOB_NAME, run.info.run_name)
        try:
            job_dir = self._folder_of(run, name)
            if not (job_dir / "handle.json").is_file() and not (job_dir / SUBMITTER).is_file():
                return run
            submission = self.attach(name)
            outcome = submission.handle.poll()
            if outcome is not None:
                self.finalize(submission, outcome)
        except JobLost:  # recorded Failed by `attach`
            pass
        except SubmitError:  # still starting, or its processes cannot be reached from here
            return run
        return self.tracker.run(run.info.run_id)

    def show(self, name: str) -> dict:
        run = self.job(name)
        if run is None:
            raise SubmitError(f"no job named '{name}'")
        return describe(run)

    def list(self, experiment: str | None = None, status: str | None = None, max_results: int = 50,
             include_children: bool = False) -> list[dict]:
        runs = self.tracker.list_jobs(experiment, status, max_results, include_children=include_children)
        jobs = [describe(self.reconcile(run)) for run in runs]
        return [job for job in jobs if status is None or job["status"] == status]

    def download(self, name: str, destination: Path, *, everything: bool = False,
                 output_name: str | None = None, report: Callable[[str], None] | None = None) -> list[Path]:
        """Azure's layout: `artifacts/` (./outputs, logs) by default; `named-outputs/<name>/`; `--all`: both.

        Every regular file whose name is safe is written below `destination`, and nowhere else; what is not (a
        name such as `..` or `%2e%2e` or one holding a newline, a symbolic link) is skipped and said to `report`,
        one line each (on stderr by default): see `downloads.py`."""
        from ..downloads import fetch, listing

        if report is None:
            import sys

            def report(line: str) -> None:
                print(f"mljobs: {line}", file=sys.stderr)

        run = self.job(name)
        if run is None:
            raise SubmitError(f"no job named '{name}'")
        status = run.data.tags.get(T.STATUS)
        if status not in T.TERMINAL:
            raise SubmitError(f"job '{name}' is {status}; download waits for it to end")
        record = self.tracker.record(run)

        def get(item: str, into: Path) -> list[Path]:
            path = fetch(record, item, into, report)
            return [] if path is None else [path]

        top = listing(record, None, report)
        if run.data.tags.get(T.JOB_TYPE) == "sweep":  # as az ml does: the best trial's files, the sweep's own aside
            best = run.data.tags.get("mljobs.best_trial")
            written = [path for item in top for path in get(item, destination / "hd-artifacts")]
            if best is None:  # no trial completed with a finite value of the metric: the sweep's own files
                return written
            return written + self.download(best, destination, everything=everything, output_name=output_name,
                                           report=report)
        written = []
        if output_name is not None:
            named = ({a.rsplit("/", 1)[-1] for a in listing(record, "named-outputs", report)}
                     if "named-outputs" in top else set())
            if output_name not in named:
                raise SubmitError(f"job '{name}' ({status}) left no output named '{output_name}'"
                                  + ("" if status == "Completed" else ": it ended before writing it"))
            return get(f"named-outputs/{output_name}", destination / "named-outputs")
        for item in sorted(set(top) - {"named-outputs"}):
            written += get(item, destination / "artifacts")
        if everything and "named-outputs" in top:
            written += get("named-outputs", destination)
        return written


def _command_job(document: Document) -> CommandJob:
    job = document.model
    if not isinstance(job, CommandJob):
        raise NotRunnable("this is a sweep job; sweeps are run by the sweep engine (mljobs job create, or "
                          "sweep_job in a DAG), not as a single command")
    return job


def _clear_leftover(job_dir: Path) -> None:
    """Remove a job folder that holds no run (asked only when the store has none of that name) and whose submitter
    died: it died while it staged the job, before the run was made, and the name is free again."""
    noted = noted_process(job_dir / SUBMITTER) if job_dir.is_dir() else None
    if noted is not None and not noted[1]:
        import shutil

        shutil.rmtree(job_dir, ignore_errors=True)
