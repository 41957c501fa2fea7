"""Run a sweep job: a parent run, each trial a child job, samplers and policies from `sweep/`, Azure's limits.

Trial `i` is the command job the sweep's `trial` describes, with `${{search_space.x}}` replaced by the values the
sampler suggests for `i` (a function of the history and the seed), named `<sweep>_<i>` and recorded as a child
run (`mlflow.parentRunId`) with its hyperparameters as params. While a trial runs, its primary metric is read
from MLflow at every new value and the policy may stop it: a stopped trial is Canceled with the policy's
reason, and the sweep goes on. The parent records the best trial, its value and parameters, and a summary.

`Sweep` holds what one trial needs (so an Airflow task instance can run trial `i` on its own, reading the
history from MLflow); `SweepRunner` runs a whole sweep in this process, for the CLI.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import signal
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

from .backends.base import cancel_reason, mark_canceled
from .engine import Engine, Follower, JobResult, Submission, describe
from .loading import collector_paused
from .naming import check_name, generate_name
from .processes import note_this_process, noted_process
from .spec import Document, NotRunnable, SubmitError, load_job_dict
from .spec.bindings import render_only
from .spec.dump import dump_yaml
from .sweep import TrialRecord, policy_for, sampler_for
from .sweep.policies import is_finite
from .sweep.space import grid_points
from .tracking import JobRecord
from .tracking import tags as T

POLL_SECONDS = 0.5
TRIAL_TAG = "mljobs.sweep.trial"
PARAMS_TAG = "mljobs.sweep.params"
STOP_TAG = "mljobs.early_termination"
TOTAL_TAG = "mljobs.sweep.total"
METRIC_TAG = "mljobs.sweep.primary_metric"
NO_BEST_TAG = "mljobs.sweep.no_best"  # why a sweep has no best trial
NONFINITE_TAG = "mljobs.sweep.nonfinite_primary_metric"  # trials whose final value is NaN or infinite
RUNNER_FILE = "runner.json"  # in the sweep's folder: the process that runs it, which `cancel_sweep` signals


@dataclass(frozen=True)
class TrialSummary:
    """A trial as the sweep's record and its best-trial choice see it."""

    index: int
    name: str
    run_id: str
    params: dict
    status: str
    values: tuple = ()
    stop_reason: str | None = None

    def record(self) -> TrialRecord:
        return TrialRecord(self.index, self.params, self.status, self.values)

    @property
    def ended(self) -> bool:
        return self.status in T.TERMINAL

    @property
    def settled(self) -> bool:
        """Completed, or stopped by the policy: a retry of its task reports it instead of running it again."""
        return self.status == "Completed" or (self.ended and self.stop_reason is not None)


@dataclass
class RunningTrial:
    index: int
    params: dict
    submission: Submission
    values: tuple = ()
    follower: Follower | None = None  # made at the first watch, with the writer of the trial's log lines
    result: JobResult | None = None
    stop_reason: str | None = None

    def summary(self) -> TrialSummary:
        status = self.result.status if self.result else "Running"
        return TrialSummary(self.index, self.submission.name, self.submission.run_id, self.params, status,
                            self.values, self.stop_reason)


@dataclass
class SweepResult:
    name: str
    status: str
    run_id: str
    experiment_id: str
    best: dict | None = None  # {trial, name, run_id, value, params}
    trials: list[dict] = field(default_factory=list)
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "run_id": self.run_id, "experiment_id": self.experiment_id,
                "best": self.best, "trials": self.trials, "reason": self.reason}


class Sweep:
    """One sweep's rules: how many trials, which parameters trial `i` gets, when a trial is stopped, which is best."""

    def __init__(self, engine: Engine, document: Document, *, name: str | None = None,
                 experiment_name: str | None = None, tags: dict | None = None) -> None:
        self.engine = engine
        self.document = document
        self.job = document.model
        self.name = check_name(name or self.job.name or generate_name())
        self.experiment = experiment_name or self.job.experiment_name
        self.tags = tags or {}
        self.metric = self.job.objective.primary_metric
        self.goal = self.job.objective.goal
        algorithm = vars(self.job.sampling_algorithm)
        if algorithm["seed"] is None:  # unseeded: draws of this sweep's own, the same in every trial of it
            algorithm = {**algorithm, "seed": zlib.crc32(self.name.encode())}
        self.seed = algorithm["seed"]
        try:
            self.sampler = sampler_for(algorithm, self.goal)
        except ImportError as missing:
            where = document.source.mark(("sampling_algorithm",))
            raise SubmitError(f"{where}: error: sampling_algorithm: {missing}") from None
        policy = self.job.early_termination
        self.policy = policy_for(None if policy is None else {k: v for k, v in vars(policy).items() if v is not None},
                                 self.goal)
        total = self.job.limits.max_total_trials
        if self.job.sampling_algorithm.type == "grid":
            total = min(total, len(grid_points(self.job.search_space)))
        self.total = total
        self.concurrency = max(1, min(self.job.limits.max_concurrent_trials, total))

    # -- the parent -----------------------------------------------------------------------------------------------
    def open_parent(self, reuse: bool = False):
        """Create the sweep's parent run; an existing one of that name is an error, or with `reuse` the parent
        (an Airflow retry of the task that opened it)."""
        tracker = self.engine.tracker
        existing = tracker.find_job(self.name)
        if existing is not None and reuse:
            return tracker.record(existing)
        if existing is not None:
            raise NotRunnable(f"a job named '{self.name}' exists already; job names are unique, give another --name")
        self.engine.check(self.document)  # a sweep whose trials cannot start is never recorded
        try:  # the sweep's folder claims its name, as a command job's does (and holds its runner's identity)
            self.engine.job_dir(self.name).mkdir(parents=True, exist_ok=reuse)
        except FileExistsError:
            raise NotRunnable(f"a job named '{self.name}' exists already; job names are unique, give another --name") from None
        except OSError as exc:
            raise SubmitError(f"cannot create the sweep's folder {self.engine.job_dir(self.name)}: {exc.strerror}") from None
        parent = tracker.create_job_run(self.experiment, self.name,
                                        {T.JOB_TYPE: "sweep", T.COMPUTE: self.job.compute or "local",
                                         TOTAL_TAG: str(self.total), METRIC_TAG: self.metric,
                                         "mljobs.sweep.seed": str(self.seed), **self.tags})
        parent.log_text(dump_yaml(self.document.data), "job.yml")
        parent.set_status("Running")
        return parent

    def parent(self):
        run = self.engine.tracker.find_job(self.name)
        if run is None:
            raise SubmitError(f"no sweep named '{self.name}'")
        return self.engine.tracker.record(run)

    # -- trials ----------------------------------------------------------------------------------------------------
    def waits_for(self, index: int, trials, still_to_start=()) -> list[int]:
        """The trials of earlier waves not ended, which trial `index` waits for before it asks the sampler.

        A sampler that learns from the history (bayesian) runs in waves of max_concurrent_trials, so that each wave
        sees every result of the waves before it. Those running (`trials`, as recorded) are waited for, and those
        not recorded yet only when the caller knows they will still start (`still_to_start`: in Airflow, trials
        whose task instances have not finished), so a sweep never hangs on a trial that failed before it began."""
        if not self.sampler.needs_history:
            return []
        wave_start = index - index % self.concurrency
        recorded = {t.index for t in trials}
        running = {t.index for t in trials if t.index < wave_start and t.status not in T.TERMINAL}
        coming = {i for i in still_to_start if i < wave_start and i not in recorded}
        return sorted(running | coming)

    def start(self, index: int, parent_run_id: str, history: tuple[TrialRecord, ...],
              say: Callable[[str], None], log: Callable[[str], None] | None = None, *, attempt: int = 1,
              params: dict | None = None) -> RunningTrial:
        """Start trial `index` (or attach to its running job). A later `attempt` reruns a trial that failed, as a
        job of its own named `<sweep>_<index>-try<attempt>`, with the `params` it had."""
        if params is None:
            params = self.sampler.suggest(self.job.search_space, history, index)
        name = f"{self.name}_{index}" if attempt == 1 else f"{self.name}_{index}-try{attempt}"
        submission = self.engine.submit(self.trial_document(params), name=name, experiment_name=self.experiment,
                                        tags={T.JOB_TYPE: "command", TRIAL_TAG: str(index),
                                              PARAMS_TAG: json.dumps(params, sort_keys=True), **self.tags},
                                        params={k: _text(v) for k, v in params.items()},
                                        parent_run_id=parent_run_id, log=log)
        if submission.reattached:  # a retry of this trial: its parameters are the ones recorded then
            tags = self.engine.tracker.run(submission.run_id).data.tags
            params = json.loads(tags.get(PARAMS_TAG, json.dumps(params)))
        say(f"[trial {index}] started {name}: {json.dumps(params, default=str)}\n")
        return RunningTrial(index, params, submission)

    def trial_document(self, params: dict) -> Document:
        data = copy.deepcopy(self.document.data)
        trial = data.pop("trial")
        values = {f"search_space.{k}": _text(v) for k, v in params.items()}
        variables = dict(trial.get("environment_variables") or {})
        variables.update({f"AZUREML_SWEEP_{k}": _text(v) for k, v in params.items()})
        job = {"type": "command", "command": render_only(trial["command"], "search_space.", values),
               "environment_variables": variables, "experiment_name": self.experiment}
        for key in ("code", "environment", "resources", "distribution"):
            if key in trial:
                job[key] = trial[key]
        for key in ("inputs", "outputs", "compute", "tags", "description"):
            if key in data:
                job[key] = data[key]
        if self.job.limits.trial_timeout:
            job["limits"] = {"timeout": self.job.limits.trial_timeout}
        return load_job_dict(job, name=str(self.job.source or "sweep.yml"), base_dir=self.job.base_dir)

    def watch(self, trial: RunningTrial, history: Callable[[], tuple[TrialRecord, ...]],
              say: Callable[[str], None], wait: float = 0.0) -> bool:
        """Forward the trial's log, read its metric, apply the policy; True once the trial is finished.

        `wait` blocks up to that long for the trial to end first (a task instance watching its one trial)."""
        if trial.follower is None:
            def write(text: str) -> None:
                say("".join(f"[trial {trial.index}] {line}\n" for line in text.splitlines()))

            trial.follower = self.engine.follower(trial.submission, write)
        handle = trial.submission.handle
        outcome = trial.follower.step(wait)  # limits.trial_timeout too
        if outcome is None and self.policy is None:  # nothing acts on a running trial's metric: read it at the end
            return False
        if outcome is None:
            values = self.metric_values(trial.submission.run_id)
            grew = len(values) > len(trial.values)
            trial.values = values
            stop = grew and self.policy.should_stop(TrialRecord(trial.index, trial.params, "Running", values), history())
            if stop:
                trial.stop_reason = stop
                say(f"[trial {trial.index}] stopped: {stop}\n")
                outcome = handle.cancel(stop)
        if outcome is None:
            return False
        trial.result = self.engine.finalize(trial.submission, outcome)
        values = trial.values = self._values_of(trial.submission.run_id, trial.result.metrics)  # the final ones
        if trial.stop_reason:
            done = trial.submission
            JobRecord(self.engine.tracker, done.run_id, done.experiment_id, done.name).set_tags({STOP_TAG: trial.stop_reason})
        if not trial.values and trial.result.status == "Completed":
            logged = sorted(trial.result.metrics) or ["nothing"]
            say(f"[trial {trial.index}] WARNING: never logged the primary metric '{self.metric}'; it logged: "
                f"{', '.join(logged)}\n")
        say(f"[trial {trial.index}] {trial.result.status}" + (f": {self.metric}={values[-1]:.6g}" if values else "") + "\n")
        return True

    def metric_values(self, run_id: str) -> tuple:
        history = self.engine.tracker.client.get_metric_history(run_id, self.metric)
        return tuple(m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp)))

    def recorded_trials(self, parent_run_id: str) -> list[TrialSummary]:
        """The trials as MLflow has them (what another task instance of the same sweep sees)."""
        runs = self.engine.tracker.list_jobs(parent_run_id=parent_run_id, max_results=1000)
        return sorted((self._summary(run) for run in runs if TRIAL_TAG in run.data.tags), key=lambda t: t.index)

    def attempts(self, index: int, parent_run_id: str) -> list[TrialSummary]:
        """Trial `index`'s jobs, oldest first: one, or more when Airflow retried the trial after it failed."""
        runs = self.engine.tracker.list_jobs(experiment=self.experiment, parent_run_id=parent_run_id,
                                             max_results=100, where={TRIAL_TAG: index})
        return [self._summary(run) for run in reversed(runs)]

    def _summary(self, run) -> TrialSummary:
        tags = run.data.tags
        return TrialSummary(int(tags[TRIAL_TAG]), tags[T.JOB_NAME], run.info.run_id,
                            json.loads(tags.get(PARAMS_TAG, "{}")), tags.get(T.STATUS, "Running"),
                            self._values_of(run.info.run_id, run.data.metrics), tags.get(STOP_TAG))

    def _values_of(self, run_id: str, latest: dict) -> tuple:
        """The run's values of the primary metric; a run whose latest metrics lack it has none to read."""
        return self.metric_values(run_id) if self.metric in latest else ()

    # -- the end ------------------------------------------------------------------------------------------------
    def best(self, trials: list[TrialSummary]) -> TrialSummary | None:
        """The Completed trial whose final value of the primary metric is the best finite one; None when no
        Completed trial ended with a finite value. NaN and infinities never rank (an `inf` is no record score, and
        a NaN compares false with everything, so a plain max would keep whichever came first); ties go to the
        earlier trial."""
        scored = [t for t in trials if t.status == "Completed" and t.values and is_finite(t.values[-1])]
        if not scored:
            return None
        sign = 1 if self.goal == "maximize" else -1
        return max(scored, key=lambda t: (sign * t.values[-1], -t.index))

    def no_best(self, trials: list[TrialSummary]) -> str:
        """Why a sweep has no best trial, in one sentence."""
        completed = [t for t in trials if t.status == "Completed"]
        if not completed:
            return "no best trial: no trial completed"
        nonfinite = [t for t in completed if t.values and not is_finite(t.values[-1])]
        text = f"no best trial: no completed trial ended with a finite value of '{self.metric}'"
        if nonfinite:
            text += " (" + ", ".join(f"trial {t.index}: {_nonfinite(t.values[-1])}" for t in nonfinite) + ")"
        return text

    def conclude(self, parent, trials: list[TrialSummary], reason: str | None, say: Callable[[str], None]) -> SweepResult:
        best = self.best(trials)
        rows = [{"trial": t.index, "name": t.name, "status": t.status, self.metric: t.values[-1] if t.values else None,
                 "intervals": len(t.values), "stopped_by": t.stop_reason or "",
                 **{f"param.{k}": _text(v) for k, v in t.params.items()}} for t in trials]
        parent.log_text(_csv(rows), "sweep/trials.csv")
        silent = [t.index for t in trials if not t.values]
        nonfinite = [t.index for t in trials if t.values and not is_finite(t.values[-1])]
        tags = {"mljobs.sweep.trials": str(len(trials))}
        best_info, best_params, missing = None, None, None
        if best is not None:
            best_info = {"trial": best.index, "name": best.name, "run_id": best.run_id, "value": best.values[-1],
                         "params": best.params}
            tags.update({"best_child_run_id": best.run_id, "mljobs.best_trial": best.name})
            best_params = {f"best.{k}": _text(v) for k, v in best.params.items()}
            self.engine.tracker.client.log_metric(parent.run_id, f"best_{self.metric}", best.values[-1])
        else:
            missing = self.no_best(trials)
            tags[NO_BEST_TAG] = missing
        if silent:
            tags["mljobs.sweep.no_primary_metric"] = ",".join(map(str, silent))
        if nonfinite:
            tags[NONFINITE_TAG] = ",".join(map(str, nonfinite))
        parent.set_tags(tags, best_params)
        _log_plots(parent, [r for r in rows if is_finite(r[self.metric])], self.metric, self.goal)
        completed = [t for t in trials if t.status == "Completed"]
        status = "Canceled" if reason else "Completed" if completed else "Failed"  # Azure cancels a timed-out sweep
        why = reason or (None if completed else "no trial completed")
        # a Completed sweep without a best says so where its end is read: the summary's Reason, `job show`'s
        # failure_reason (a Canceled or Failed one has its reason already, and the tag)
        why = why or missing
        parent.set_status(status, reason=why)
        if best_info:
            say(f"best: trial {best.index} ({best.name}) {self.metric}={best.values[-1]:.6g} "
                f"{json.dumps(best.params, default=str)}\n")
        else:
            say(f"{missing}\n")
        return SweepResult(self.name, status, parent.run_id, parent.experiment_id, best_info, rows, why)


class SweepCanceled(BaseException):
    """A sweep canceled while it runs (`mljobs job cancel -n`): an interrupt, not an error."""


class SweepRunner(Sweep):
    """Runs one sweep to its end in this process, with at most `max_concurrent_trials` trials at once."""

    def run(self, write: Callable[[str], None] | None = None, progress: Callable[[str], None] | None = None,
            parent: JobRecord | None = None) -> SweepResult:
        """Run the sweep to its end; `parent`: its run, opened already (by the command that started this one)."""
        parent = parent or self.open_parent()
        folder = self.engine.job_dir(self.name)
        note_this_process(folder / RUNNER_FILE)
        say = write or (lambda text: None)
        started_at = time.time()
        running: dict[int, RunningTrial] = {}
        finished: list[RunningTrial] = []
        next_index = 0
        reason = None

        def history() -> tuple[TrialRecord, ...]:
            return tuple(sorted((t.summary().record() for t in (*finished, *running.values())), key=lambda r: r.index))

        try:
            while next_index < self.total or running:
                canceled = cancel_reason(folder)  # `cancel_sweep` from another process, whose signal may come first
                if canceled:
                    raise SweepCanceled(canceled)
                if self.job.limits.timeout and time.time() - started_at > self.job.limits.timeout:
                    reason = f"the sweep reached limits.timeout of {self.job.limits.timeout} s"
                    for trial in running.values():
                        trial.submission.handle.cancel(reason)
                    self.total = next_index
                while (len(running) < self.concurrency and next_index < self.total
                       and not self.waits_for(next_index, [t.summary() for t in running.values()])):
                    running[next_index] = self.start(next_index, parent.run_id, history(), say)
                    next_index += 1
                for index in list(running):
                    if self.watch(running[index], history, say):
                        finished.append(running.pop(index))
                if progress:
                    progress(self._progress(running, finished))
                if running:
                    time.sleep(POLL_SECONDS)
        except BaseException as exc:  # an interrupt or a cancel (Canceled), or an error (Failed, and why)
            failed = isinstance(exc, Exception)
            why = f"the sweep failed: {exc}" if failed else cancel_reason(folder) or "the sweep was canceled"
            for trial in running.values():
                self.engine.stop(trial.submission, why)
            parent.set_status("Failed" if failed else "Canceled", reason=why)
            raise
        summaries = sorted((t.summary() for t in finished), key=lambda t: t.index)
        return self.conclude(parent, summaries, reason, say)

    def _progress(self, running, finished) -> str:
        summaries = [t.summary() for t in finished]
        done = sum(1 for t in summaries if t.status == "Completed")
        stopped = sum(1 for t in summaries if t.stop_reason)
        failed = len(summaries) - done - stopped
        best = self.best(summaries)
        text = f"trials {len(finished)}/{self.total}: {done} done, {len(running)} running, {stopped} stopped"
        text += f", {failed} failed" if failed else ""
        return text + (f" | best {self.metric} {best.values[-1]:.6g} (trial {best.index})" if best else "")


def cancel_sweep(engine: Engine, name: str, reason: str = "canceled by user", wait: float = 60.0) -> dict:
    """Cancel a sweep from any process: its runner stops the running trials and records the sweep Canceled; when
    no runner lives (it died, or Airflow runs the sweep), the running trials are canceled here and the sweep
    recorded. Returns the sweep as `describe` tells it."""
    run = _sweep_run(engine, name, reconcile=False)  # a dead runner's sweep is canceled here, as asked
    if run.data.tags.get(T.STATUS) in T.TERMINAL:
        return describe(run)
    folder = engine.job_dir(name)
    mark_canceled(folder, reason)
    runner = _runner(folder)
    if runner is not None:
        os.kill(runner, signal.SIGTERM)
        deadline = time.time() + wait
        while time.time() < deadline:
            run = _sweep_run(engine, name)
            if run.data.tags.get(T.STATUS) in T.TERMINAL:
                return describe(run)
            time.sleep(0.2)
    for trial in engine.tracker.list_jobs(parent_run_id=run.info.run_id, max_results=1000):
        if trial.data.tags.get(T.STATUS) not in T.TERMINAL:
            try:
                engine.cancel(trial.data.tags[T.JOB_NAME], reason)
            except SubmitError:  # its folder is on another machine (an Airflow worker's): it is recorded below
                pass
    engine.tracker.record(run).set_status("Canceled", reason=reason)
    return describe(_sweep_run(engine, name))


def follow_sweep(engine: Engine, name: str, say: Callable[[str], None], progress: Callable[[str], None],
                 poll: float = 0.5) -> dict:
    """Follow a sweep from its record until it ends, from any process: each trial's start and end, and a
    progress line. Returns the sweep as `describe` tells it."""
    seen: dict[str, str] = {}
    while True:
        run = _sweep_run(engine, name)
        trials = engine.tracker.list_jobs(parent_run_id=run.info.run_id, max_results=1000)
        for trial in sorted(trials, key=lambda t: int(t.data.tags.get(TRIAL_TAG, -1))):
            tags = trial.data.tags
            status = tags.get(T.STATUS, "NotStarted")
            if seen.get(tags[T.JOB_NAME]) != status:
                seen[tags[T.JOB_NAME]] = status
                value = trial.data.metrics.get(run.data.tags.get(METRIC_TAG, ""))
                say(f"[trial {tags.get(TRIAL_TAG, '?')}] {tags[T.JOB_NAME]}: {status}"
                    + (f" {json.loads(tags.get(PARAMS_TAG, '{}'))}" if status == "Running" else "")
                    + (f" ({value:.6g})" if value is not None and status in T.TERMINAL else "") + "\n")
        ended = sum(1 for status in seen.values() if status in T.TERMINAL)
        progress(f"trials {ended}/{run.data.tags.get(TOTAL_TAG, '?')}: {len(seen) - ended} running")
        if run.data.tags.get(T.STATUS) in T.TERMINAL:
            return describe(run)
        time.sleep(poll)


def _sweep_run(engine: Engine, name: str, reconcile: bool = True):
    run = engine.job(name) if reconcile else engine.tracker.find_job(name)
    if run is None or run.data.tags.get(T.JOB_TYPE) != "sweep":
        raise SubmitError(f"no sweep named '{name}'")
    return run


def _runner(folder) -> int | None:
    """The pid of the process that runs the sweep, while it lives."""
    noted = noted_process(folder / RUNNER_FILE)
    if noted is None:
        return None
    pid, alive = noted
    return pid if alive and pid != os.getpid() else None


def _nonfinite(value) -> str:
    """A value that is not finite as it was logged: MLflow's SQL stores read an infinity back as +/-1.79769e+308."""
    return f"{value}" if value != value or abs(value) == math.inf else "inf" if value > 0 else "-inf"


def _text(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _log_plots(parent, rows: list[dict], metric: str, goal: str) -> None:
    """Objective per trial with best-so-far, and each hyperparameter against the objective (when matplotlib is
    there). Figures are made without pyplot: no global figure registry in a long-lived worker, a lighter import."""
    scored = [r for r in rows if r[metric] is not None]
    if not scored:
        return
    try:
        with collector_paused():
            from matplotlib.figure import Figure
    except ImportError:
        return
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    xs = [r["trial"] for r in scored]
    ys = [r[metric] for r in scored]
    best, running_best = [], None
    for y in ys:
        running_best = y if running_best is None else (max if goal == "maximize" else min)(running_best, y)
        best.append(running_best)
    axis.scatter(xs, ys, label=metric)
    axis.step(xs, best, where="post", label="best so far")
    axis.set_xlabel("trial")
    axis.set_ylabel(metric)
    axis.legend()
    parent.client.log_figure(parent.run_id, figure, "sweep/objective.png")
    params = [k for k in scored[0] if k.startswith("param.")]
    if params:
        figure = Figure(figsize=(4 * len(params), 3.5))
        axes = figure.subplots(1, len(params), squeeze=False)
        for axis, key in zip(axes[0], params):
            values = [r[key] for r in scored]
            try:
                values = [float(v) for v in values]
            except ValueError:
                pass
            axis.scatter(values, ys)
            axis.set_xlabel(key[len("param."):])
            axis.set_ylabel(metric)
        figure.tight_layout()
        parent.client.log_figure(parent.run_id, figure, "sweep/hyperparameters.png")


def reconcile_sweep(engine: Engine, run):
    """A sweep whose runner died (killed with its terminal, say): no trial starts any more, so those still running
    are canceled, the others' true ends recorded, and the sweep recorded Failed with the reason, so that nobody
    waits for it. A sweep run by Airflow has no runner here: its tasks record it."""
    runner = noted_process(engine.job_dir(run.data.tags.get(T.JOB_NAME, run.info.run_name)) / RUNNER_FILE)
    if runner is None or runner[1]:
        return run
    reason = f"the process that ran the sweep (pid {runner[0]}) died before the sweep ended"
    for trial in engine.tracker.list_jobs(parent_run_id=run.info.run_id, max_results=1000):
        if engine.reconcile(trial).data.tags.get(T.STATUS) not in T.TERMINAL:
            with contextlib.suppress(SubmitError):  # its folder is on another machine
                engine.cancel(trial.data.tags[T.JOB_NAME], reason)
    engine.tracker.record(run).set_status("Failed", reason=reason)
    return engine.tracker.run(run.info.run_id)

