"""Sweep jobs in Airflow: every trial a dynamically mapped task instance a user can see, retry and read.

    tune = sweep_job("tune", job="jobs/iris/job-sweep.yml", inputs={"iris_csv": "{{ ti.xcom_pull('extract') }}"})
    extract_task >> tune
    retrain(tune.best.output)        # {"params": ..., "value": ..., "run_id": ..., "metric": ...}

`sweep_job` makes a task group of three: `start` opens the sweep's parent run and returns one item per trial
(its index, the parent's run id and the store it lives in); `trial` is mapped over them (named by its hyperparameters, at most `max_concurrent_trials` at once) and each
instance asks the sampler for its parameters when it starts (from the history in MLflow, running trials
pending), runs its trial job, and applies the early-termination policy to it as its metric arrives; `best`
records the best trial on the parent and returns it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from airflow.sdk import BaseOperator, TaskGroup
from airflow.sdk.exceptions import AirflowException, AirflowRescheduleException

from .hooks import MlflowHook, task_engine
from .links import MlflowRunLink, note_run
from .operators import (BindingsSurviveJinja, _LineLogger, airflow_tags, experiment_for, rendered_inputs,
                        rendered_overrides, user_errors_fail)

POLL_SECONDS = 0.25  # how often a running trial's metric is read for the policy
WAVE_POLL_SECONDS = 5  # how often a bayesian trial waiting for the earlier wave looks again (its slot is free meanwhile)


class _SweepTask(BindingsSurviveJinja, BaseOperator):
    """What the three tasks share: the sweep's YAML, its overrides, and its name in this DAG run."""

    template_fields: Sequence[str] = ("job", "overrides", "inputs", "experiment_name")
    ui_color = "#e4d5f7"
    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, job: str | dict, overrides: dict | None = None, inputs: dict | None = None,
                 experiment_name: str | None = None, sweep_group: str = "", mlflow_conn_id: str = MlflowHook.default_conn_name,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.overrides = {} if overrides is None else overrides  # read as CommandJobOperator reads them: at run time
        self.inputs = {} if inputs is None else inputs
        self.experiment_name = experiment_name
        self.sweep_group = sweep_group
        self.mlflow_conn_id = mlflow_conn_id

    def _sweep(self, context, store: dict | None = None):
        """The sweep, recording into `store` (as `start` found it) or, by default, where the connection says."""
        from ..naming import safe_name
        from ..sweeps import Sweep

        uri, home = (store["tracking_uri"], store["home"]) if store else MlflowHook(self.mlflow_conn_id).settings()
        engine = task_engine(uri, home)
        folder = Path(self.dag.fileloc).parent if self.has_dag() and self.dag.fileloc else None
        source = self.job if isinstance(self.job, dict) or folder is None or Path(self.job).is_absolute() \
            else folder / self.job
        document = user_errors_fail(lambda: engine.load(source, rendered_overrides(self.overrides),
                                                        inputs=rendered_inputs(self.inputs), base_dir=folder))
        if document.kind != "sweep":
            raise AirflowException(f"{self.job} is a {document.kind} job; sweep_job runs sweep jobs")
        ti = context["ti"]
        name = safe_name(ti.dag_id, context["run_id"], self.sweep_group)
        tags = {k: v for k, v in airflow_tags(context).items() if k != "mljobs.airflow.map_index"}
        experiment = experiment_for(self.job, self.experiment_name, context)
        return user_errors_fail(lambda: Sweep(engine, document, name=name, experiment_name=experiment,
                                              tags=tags))


class SweepStartOperator(_SweepTask):
    """Open the sweep's parent run (once per DAG run) and return the trials to map over."""

    def execute(self, context) -> list[dict]:
        uri, home = MlflowHook(self.mlflow_conn_id).settings()
        sweep = self._sweep(context, {"tracking_uri": uri, "home": home})
        parent = user_errors_fail(lambda: sweep.open_parent(reuse=True))
        parent_run_id = parent.run_id
        note_run(self, sweep.engine.config, parent.experiment_id, parent_run_id)
        self.log.info("sweep %s: %d trials, %d at a time", sweep.name, sweep.total, sweep.concurrency)
        store = _store_for_trials(sweep.engine.config, home)
        return [{"index": index, "parent_run_id": parent_run_id, **({"store": store} if store else {})}
                for index in range(sweep.total)]


class SweepTrialOperator(_SweepTask):
    """Run one trial ({index, parent_run_id}): ask the sampler, run the trial job, apply the policy; a stopped
    trial succeeds."""

    def __init__(self, *, trial: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trial = trial

    def execute(self, context) -> dict:
        sweep = self._sweep(context, self.trial.get("store"))
        self.index, parent_run_id = self.trial["index"], self.trial["parent_run_id"]
        say = _LineLogger(self.log)

        def history():
            return tuple(t.record() for t in sweep.recorded_trials(parent_run_id))

        retry = context["ti"].try_number > 1
        attempts = sweep.attempts(self.index, parent_run_id) if retry else []  # the trial's jobs of earlier tries
        last = attempts[-1] if attempts else None
        if last is not None and last.settled:  # its job ended in an earlier try: report it, never run it twice
            self.log.info("trial %d ended in an earlier try of this task, as %s: %s", self.index, last.name, last.status)
            context["trial_label"] = _label(last.params)
            return _report(last)
        recorded, unfinished = [], []
        if sweep.sampler.needs_history:
            recorded, unfinished = sweep.recorded_trials(parent_run_id), _unfinished_trials(context["ti"])
        earlier = sweep.waits_for(self.index, recorded, unfinished)
        if earlier and last is None:  # a retry goes straight back to its trial
            self.log.info("trial %d waits for the earlier wave (trials %s) to end", self.index, earlier)
            raise AirflowRescheduleException(datetime.now(timezone.utc) + timedelta(seconds=WAVE_POLL_SECONDS))
        rerun = last is not None and last.ended  # failed or killed: a new job, with the same parameters
        trial = user_errors_fail(lambda: sweep.start(
            self.index, parent_run_id, tuple(t.record() for t in recorded), say, log=say,
            attempt=len(attempts) + 1 if rerun else max(len(attempts), 1), params=last.params if last else None))
        context["trial_label"] = _label(trial.params)
        self._trial, self._engine = trial, sweep.engine
        note_run(self, sweep.engine.config, trial.submission.experiment_id, trial.submission.run_id)
        while not sweep.watch(trial, history, say, wait=POLL_SECONDS):
            pass
        summary = trial.summary()
        if summary.status == "Failed":
            raise AirflowException(f"trial {self.index} failed: {trial.result.reason}\n{trial.result.log_tail}")
        return _report(summary)

    def on_kill(self) -> None:
        """Stop the trial's job and record its end (a timeout or a kill ends `execute` without doing so)."""
        trial = getattr(self, "_trial", None)
        if trial is not None:
            self._engine.stop(trial.submission, "killed by Airflow")


class SweepBestOperator(_SweepTask):
    """Record the best trial on the parent run and return it: its parameters, value and run id."""

    def execute(self, context) -> dict:
        sweep = self._sweep(context)
        parent = sweep.parent()
        note_run(self, sweep.engine.config, parent.experiment_id, parent.run_id)
        result = sweep.conclude(parent, sweep.recorded_trials(parent.run_id), None, _LineLogger(self.log))
        if result.best is None:
            raise AirflowException(f"sweep {sweep.name} has no trial that completed with '{sweep.metric}'")
        return {**result.best, "metric": sweep.metric, "sweep": sweep.name, "sweep_run_id": result.run_id}


def _store_for_trials(config, configured_home: str | None) -> dict | None:
    """Where the parent run lives, handed to the trials so that they record beside it whatever their worker's
    connection, directory or environment say (and need not look the connection up again).

    The embedded store is the workspace folder itself, so its path is handed on. With a tracking server the job
    folders are each worker's own scratch: its home is handed on only when the connection names one. None when
    the tracking URI carries credentials: those stay out of XCom, and each trial reads the connection itself."""
    from urllib.parse import urlsplit

    if config.embedded:
        return {"home": str(config.home), "tracking_uri": None}
    if "@" in urlsplit(config.tracking_uri).netloc:
        return None
    return {"home": configured_home, "tracking_uri": config.tracking_uri}


def _label(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _report(summary) -> dict:
    return {"index": summary.index, "name": summary.name, "run_id": summary.run_id, "params": summary.params,
            "status": summary.status, "value": summary.values[-1] if summary.values else None,
            "stopped_by": summary.stop_reason}


_FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}


def _unfinished_trials(ti) -> list[int]:
    """The trials (map indexes of this task) whose task instances have not finished in this DAG run: those not
    started yet will still start, so a later wave waits for them too."""
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id]).get(ti.run_id, {})
    prefix = f"{ti.task_id}_"
    return [int(key[len(prefix):]) for key, state in states.items()
            if key.startswith(prefix) and key[len(prefix):].isdigit() and state not in _FINISHED]


def sweep_job(task_id: str, *, job: str | dict, set: dict | None = None, inputs: dict | None = None,  # noqa: A002
              compute: str | None = None, experiment_name: str | None = None,
              mlflow_conn_id: str = MlflowHook.default_conn_name, max_concurrent_trials: int | None = None,
              **task_args: Any) -> TaskGroup:
    """A task group running the sweep job `job`; its `best` task's XCom is the best trial.

    Concurrency comes from the YAML's `limits.max_concurrent_trials` and `set`, read when the DAG is parsed, or
    from `max_concurrent_trials` here (needed when `job` or that override is a template). `task_args` (retries,
    pool, queue, execution_timeout, ...) go to its tasks, as to any operator.
    """
    overrides = set if compute is None else {**(set or {}), "compute": compute}
    common = {"job": job, "overrides": overrides, "inputs": inputs, "experiment_name": experiment_name,
              "sweep_group": task_id, "mlflow_conn_id": mlflow_conn_id, **task_args}
    concurrency = max_concurrent_trials or _concurrency_of(job, overrides)
    with TaskGroup(task_id) as group:
        start = SweepStartOperator(task_id="start", **common)
        trials = SweepTrialOperator.partial(task_id="trial", max_active_tis_per_dagrun=concurrency,
                                            map_index_template="{{ trial_label }}", **common).expand(trial=start.output)
        best = SweepBestOperator(task_id="best", trigger_rule="all_done", **common)
        trials >> best
    group.best = best
    return group


def _concurrency_of(job, overrides) -> int:
    """The YAML's max_concurrent_trials with the overrides known when the DAG is parsed, read without MLflow (DAG
    parsing stays cheap). A templated job path, or a templated max_concurrent_trials, is a DAG error: the DAG
    file cannot read it before it runs."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from ..spec import load, load_job_dict

    if _templated(job):
        raise ValueError(f"sweep_job: the job {job!r} is a template, so max_concurrent_trials cannot be read from its "
                         f"YAML when the DAG is parsed; give max_concurrent_trials=")
    fixed = _parsed_overrides(overrides)
    if isinstance(job, dict):
        document = load_job_dict(job, overrides=fixed)
    else:
        path = Path(job)
        dag = DagContext.get_current()
        if not path.is_absolute() and dag is not None and dag.fileloc:
            path = Path(dag.fileloc).parent / path
        document = load(path, fixed, expect={"sweep"})
    return document.model.limits.max_concurrent_trials


def _parsed_overrides(overrides) -> dict | list | None:
    """The overrides whose values the DAG file holds (a template or an XCom is known only when the task runs)."""
    if isinstance(overrides, (list, tuple)):  # "KEY=VALUE", as on the command line
        pairs = [(item.partition("=")[0], item.partition("=")[2], item) for item in overrides if isinstance(item, str)]
    elif isinstance(overrides, dict):
        pairs = [(key, value, (key, value)) for key, value in overrides.items()]
    else:
        return None
    fixed = []
    for key, value, item in pairs:
        if _templated(value):
            if str(key).rsplit(".", 1)[-1] in ("max_concurrent_trials", "limits"):
                raise ValueError(f"sweep_job: set['{key}'] is a template, so max_concurrent_trials cannot be read "
                                 f"when the DAG is parsed; give max_concurrent_trials=")
            continue
        fixed.append(item)
    if not fixed:
        return None
    return dict(fixed) if isinstance(overrides, dict) else fixed


def _templated(value) -> bool:
    if isinstance(value, str):
        return "{{" in value.replace("${{", "") or "{%" in value
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_templated(v) for v in value)
    return not isinstance(value, (int, float, bool, type(None)))  # an XComArg: known when the DAG runs
