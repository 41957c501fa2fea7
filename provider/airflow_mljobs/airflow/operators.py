"""CommandJobOperator: run a command job YAML as an Airflow task, its log in the task log, its record in MLflow.

    train = CommandJobOperator(
        task_id="train",
        job="jobs/iris/job.yml",                       # relative to the DAG file, or a mapping
        inputs={"iris_csv": "{{ ti.xcom_pull('extract') }}"},
        set={"inputs.n_estimators": 100},
        compute="docker",
    )

Durable: the job's identity (its name and handle: container ids, or pids and start times) is stored in the
task state store as soon as it is submitted, so a retry after a worker crash reattaches to the job that is
still running, or collects the one that finished, and never starts a second. The job's name also comes from
the task instance (dag, run, task, map index), so even a cleared task finds the job of the try before.
Deferrable: the task waits in the triggerer, which writes the job's log lines into the task log as they come.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Container, Sequence

from airflow.sdk import BaseOperator, ResumableJobMixin, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from .hooks import MlflowHook
from .links import MlflowRunLink, note_run

ENDED = "Ended"  # ended while nobody watched: active until it is collected
DEFERRAL_GRACE = timedelta(minutes=2)  # Airflow's own deferral timeout, after the trigger's cancel of the job


class BindingsSurviveJinja:
    """Azure's `${{inputs.x}}` would be read by Jinja as `{{inputs.x}}`: keep it as written, template the rest."""

    def render_template(self, content, context, jinja_env=None, seen_oids=None):
        if isinstance(content, str):
            if not any(mark in content for mark in ("{{", "{%", "{#")) and not content.endswith(tuple(self.template_ext)):
                return content  # nothing for Jinja to do: a job mapping's many plain strings skip a compile each
            content = content.replace("${{", "${{ '{{' }}")  # Jinja prints '{{' there: the binding comes out whole
        return super().render_template(content, context, jinja_env, seen_oids)


class CommandJobOperator(BindingsSurviveJinja, ResumableJobMixin, BaseOperator):
    """Run an Azure ML command job YAML on local, docker or kubernetes compute; return its result as XCom.

    Args:
        job: a path to the job YAML (relative paths are read from the DAG file's folder), or a mapping.
        set: `--set` overrides, `{"inputs.lr": 0.1, "resources.instance_count": 2}`.
        inputs: input values by name; a string given to a data input sets its `path`.
        compute: the compute to run on (`local`, `docker`, a registered name), over the YAML's.
        name: the job's name; by default derived from the task instance.
        experiment_name: the MLflow experiment, over the YAML's.
        mlflow_conn_id: the MLflow connection (tracking URI in its host field).
        deferrable: wait in the triggerer instead of a worker slot.
        poll_interval: seconds between status checks while deferred.
        on_finish: `delete` (default), `delete_on_success` or `keep` the job's containers after it ends.
        durable: store the job's identity so that a retry after a crash reattaches (default True).
        docker_conn_id: an Airflow docker connection naming the Docker engine to run container jobs on.
        skip_on_exit_code: exit code(s) of the command that skip the task instead of failing it (the job's
            record stays Failed, with its exit code), as DockerOperator and KubernetesPodOperator have it.
    """

    template_fields: Sequence[str] = ("job", "overrides", "inputs", "compute", "job_name", "experiment_name")
    template_fields_renderers = {"job": "yaml", "overrides": "json", "inputs": "json"}
    ui_color = "#d5e8f7"
    external_id_key = "mljobs_job"
    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, job: str | dict, set: dict | None = None, inputs: dict | None = None,  # noqa: A002
                 compute: str | None = None, name: str | None = None, experiment_name: str | None = None,
                 mlflow_conn_id: str = MlflowHook.default_conn_name,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 poll_interval: float = 5.0, on_finish: str = "delete", durable: bool = True,
                 docker_conn_id: str | None = None, skip_on_exit_code: int | Container[int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(durable=durable, **kwargs)
        if on_finish not in ("delete", "delete_on_success", "keep"):
            raise ValueError(f"on_finish={on_finish!r} is not delete, delete_on_success or keep")
        self.job = job
        self.overrides = {} if set is None else set  # a mapping, "KEY=VALUE"s, an XComArg or a template: read at run
        self.inputs = {} if inputs is None else inputs
        self.compute = compute
        self.job_name = name
        self.experiment_name = experiment_name
        self.mlflow_conn_id = mlflow_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.on_finish = on_finish
        self.docker_conn_id = docker_conn_id
        self.skip_on_exit_code = ((skip_on_exit_code,) if isinstance(skip_on_exit_code, int)
                                  else tuple(skip_on_exit_code or ()))
        self._submission = None
        self._result = None
        self._engine = None
        self._killed = False

    @property
    def engine(self):
        if self._engine is None:
            self._engine = MlflowHook(self.mlflow_conn_id).get_engine()
        return self._engine

    # -- the paragraph ------------------------------------------------------------------------------------
    def execute(self, context) -> dict:
        if self.deferrable:
            return self._defer(context)
        if self._first_of_its_names(context):
            return self._execute_first(context)
        return self.execute_resumable(context)

    def _first_of_its_names(self, context) -> bool:
        """Whether no job of this task instance's names exists yet, seen in the workspace's folders: then no
        identity can be stored either, and the task state store (an Airflow API call) need not be read first."""
        if not self.durable or context.get("task_state_store") is None:
            return False
        from ..engine.names import all_free

        return user_errors_fail(lambda: all_free(self.engine, self._tries(context)))

    def _execute_first(self, context) -> dict:
        """`execute_resumable` with nothing to resume: submit, store the job's identity at once, follow it."""
        self.log.info("no job of this task instance's names exists: nothing to resume, the task state store is "
                      "not read")
        identity = self.submit_job(context)
        context["task_state_store"].set(self.external_id_key, identity)
        return self.poll_until_complete(identity, context)

    def submit_job(self, context) -> dict:
        """Start the job (or attach to the one an earlier try left running); its identity is stored at once."""
        engine = self.engine
        document = user_errors_fail(lambda: engine.load(self._job_source(), rendered_overrides(self.overrides),
                                                        inputs=rendered_inputs(self.inputs),
                                                        compute=self.compute, base_dir=self._dag_folder()))
        for warning in document.warnings:
            self.log.warning("%s", warning)
        earlier = self._completed_earlier(context)
        if earlier is not None:
            self.log.info("job %s completed in an earlier try; collecting its result", earlier)
            return {"name": earlier}
        self._submission = user_errors_fail(lambda: engine.submit(
            document, name=self._name_for(context), tags=airflow_tags(context),
            experiment_name=experiment_for(self.job, self.experiment_name, context),
            log=_LineLogger(self.log), compute_settings=self._compute_settings()))
        note_run(self, engine.config, self._submission.experiment_id, self._submission.run_id)
        if self._killed:  # killed while the job was being submitted: it must not outlive the task
            self.on_kill()
            raise AirflowException(f"the task was killed while job {self._submission.name} started; it was canceled")
        self.log.info("job %s: MLflow run %s%s", self._submission.name, self._submission.run_id,
                      " (attached to the running job)" if self._submission.reattached else "")
        for note in self._submission.notes:
            self.log.info("%s", note)
        return self._submission.to_dict()

    def get_job_status(self, external_id: dict, context) -> str:
        """The job's status in its record, or "Ended" for a job that ended while nobody watched."""
        run = self.engine.tracker.find_job(external_id["name"])
        if run is None:
            return "Lost"
        status = _status_of(run) or "NotStarted"
        if status in _tags().TERMINAL:
            return status
        try:
            return "Running" if self.engine.attach(external_id["name"]).handle.poll() is None else ENDED
        except Exception as exc:  # its folder or containers are gone: start afresh
            self.log.warning("job %s cannot be reattached (%s)", external_id["name"], exc)
            return "Lost"

    def is_job_active(self, status: str) -> bool:
        return status in _tags().ACTIVE or status == ENDED

    def is_job_succeeded(self, status: str) -> bool:
        return status == "Completed"

    def poll_until_complete(self, external_id: dict, context) -> dict:
        """Follow the job to its end; its result is returned too, for the mixin returns this when a retry
        reconnects (the task's XCom is then the job's result, as after a first try)."""
        engine = self.engine
        submission = self._submission if self._submission and self._submission.name == external_id["name"] else None
        if submission is None:
            submission = self._submission = engine.attach(external_id["name"])
            note_run(self, engine.config, submission.experiment_id, submission.run_id)
            self.log.info("reattached to job %s (MLflow run %s)", submission.name, submission.run_id)
        outcome = engine.follow(submission, _LineLogger(self.log))
        self._finish(engine.finalize(submission, outcome, on_finish=self.on_finish))
        return self.get_job_result(external_id, context)

    def get_job_result(self, external_id: dict, context) -> dict:
        if self._result is None:  # completed in an earlier try: read what was recorded then
            self._finish(self._recorded_result(external_id["name"]))
        return self._result.to_dict()

    def on_kill(self) -> None:
        """Cancel the job (called from Airflow's signal handler, in the middle of whatever `execute` was doing)."""
        self._killed = True
        submission = self._submission
        if submission is None:  # not submitted yet: `submit_job` cancels it as soon as it has started
            return
        self.engine.stop(submission, "killed by Airflow", self.on_finish)

    # -- deferrable ---------------------------------------------------------------------------------------------
    def _defer(self, context):
        from .triggers import JobTrigger

        state = context.get("task_state_store")
        fresh = self._first_of_its_names(context)
        stored = state.get(self.external_id_key) if state is not None and not fresh else None
        status = self.get_job_status(stored, context) if stored else None
        if status == "Completed":
            return self.get_job_result(stored, context)
        if self.is_job_active(status):
            identity = self.engine.attach(stored["name"]).to_dict()
        else:
            identity = self.submit_job(context)
            if state is not None:
                state.set(self.external_id_key, identity)
        if "handle" not in identity:  # collected a job an earlier try completed
            return self.get_job_result(identity, context)
        config = self.engine.config
        self.log.info("deferred until job %s ends: the triggerer writes its log into this task log as it runs "
                      "(`mljobs job stream -n %s` follows it too, MLJOBS_HOME=%s), its metrics in MLflow run %s",
                      identity["name"], identity["name"], config.home, identity["run_id"])
        limit = self.execution_timeout
        self.defer(trigger=JobTrigger(identity, str(config.home), None if config.embedded else config.tracking_uri,
                                      self.poll_interval, self.on_finish,
                                      deadline=time.time() + limit.total_seconds() if limit else None),
                   method_name="execute_complete",
                   timeout=limit + DEFERRAL_GRACE if limit else None)  # the trigger cancels the job first

    def resume_execution(self, next_method: str, next_kwargs: dict | None, context):
        """Airflow ends a deferral that outlived its timeout with `__fail__`: the job must not outlive the task."""
        if next_method == "__fail__":
            state = context.get("task_state_store")
            stored = state.get(self.external_id_key) if state is not None else None
            if stored:
                self.engine.stop(self.engine.attach(stored["name"]), "killed by Airflow: the deferral timed out",
                                 self.on_finish)
        return super().resume_execution(next_method, next_kwargs, context)

    def execute_complete(self, context, event: dict) -> dict:
        engine = self.engine
        submission = engine.attach(event["name"])
        for chunk in submission.handle.logs(event.get("logged") or {}, final=True):  # what the trigger did not log
            _LineLogger(self.log)(chunk.text)
        if event["status"] == "Error":
            raise AirflowException(f"waiting for job {event['name']} failed: {event['reason']}")
        self._finish(engine.finalize(submission, on_finish=self.on_finish))
        return self._result.to_dict()

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _compute_settings(self) -> dict:
        """The Docker engine of `docker_conn_id` (host `unix:///...` or `tcp://...`, or a host and a port)."""
        if not self.docker_conn_id:
            return {}
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.docker_conn_id)
        host = conn.host or ""
        url = host if "://" in host else f"tcp://{host}:{conn.port or 2375}"
        return {"docker_url": url}

    def _finish(self, result) -> None:
        self._result = result
        if not hasattr(self, "mlflow_run_page"):  # collected, or resumed from the triggerer
            note_run(self, self.engine.config, result.experiment_id, result.run_id)
        if result.status == "Failed" and result.exit_code in self.skip_on_exit_code:
            raise AirflowSkipException(f"job {result.name} exited with code {result.exit_code}, which "
                                       f"skip_on_exit_code makes a skip")
        if result.status != "Completed":
            tail = f"\n--- last lines of the log ---\n{result.log_tail}" if result.log_tail else ""
            raise AirflowException(f"job {result.name} {result.status}: {result.reason}{tail}")

    def _recorded_result(self, name: str):
        from ..engine import JobResult

        try:
            return self.engine.finalize(self.engine.attach(name))
        except Exception:
            record = self.engine.tracker.record(self.engine.tracker.find_job(name))
            return JobResult(name, "Completed", record.run_id, record.experiment_id, 0, None, record.metrics())

    def _dag_folder(self) -> Path | None:
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        return Path(fileloc).parent if fileloc else None

    def _job_source(self):
        if isinstance(self.job, dict):
            return self.job
        path = Path(self.job)
        folder = self._dag_folder()
        return path if path.is_absolute() or folder is None else folder / path

    def _tries(self, context):
        """This task instance's tries, as the engine names their jobs: `name=`, or a name made of the dag, the run,
        the task and the map index."""
        from ..engine.names import Tries

        ti = context["ti"]
        return Tries.of_task(ti.dag_id, context["run_id"], ti.task_id, getattr(ti, "map_index", -1), ti.try_number,
                             airflow_tags(context), self.job_name)

    def _name_for(self, context) -> str:
        """The engine's choice (see `engine.names`): an earlier try's job still running, or this try's name."""
        from ..engine.names import name_to_run

        return name_to_run(self.engine, self._tries(context), resume=self.durable,
                           warn=lambda text: self.log.warning("%s", text))

    def _completed_earlier(self, context) -> str | None:
        """An earlier try's completed job, looked for only where the task state store cannot say it (it keeps a
        job's identity across retries, and the mixin collects a completed job from there): with the store, an
        earlier completed job and no stored identity means the task was cleared, and a cleared task runs again."""
        if not self.durable or context.get("task_state_store") is not None:
            return None
        from ..engine.names import completed_earlier

        return completed_earlier(self.engine, self._tries(context))


def _tags():
    """The record's status vocabulary, imported when a task runs (DAG parsing stays light)."""
    from ..tracking import tags

    return tags


def _status_of(run) -> str | None:
    return run.data.tags.get(_tags().STATUS)


def user_errors_fail(call):
    """Run `call` (loading or submitting a job). A user's mistake fails the task at once, without retries (none
    can fix it), with every located problem; any other SubmitError (an engine or a store out of reach) fails it
    in one line, for a retry."""
    from ..spec import NotRunnable, SpecError, SubmitError

    try:
        return call()
    except SpecError as error:
        raise AirflowFailException(f"the job is invalid:\n{error}") from None
    except NotRunnable as error:
        raise AirflowFailException(str(error)) from None
    except SubmitError as error:
        raise AirflowException(str(error)) from None


def experiment_for(job, experiment_name: str | None, context) -> str | None:
    """The experiment asked for; for a job written in the DAG file without one, the DAG's id (a YAML file's job
    goes, as with the CLI, to its folder's name)."""
    if experiment_name or not isinstance(job, dict) or job.get("experiment_name"):
        return experiment_name
    return context["ti"].dag_id


def rendered_overrides(value) -> dict | list:
    """`set=` as it arrived at run time: a mapping, a list of "KEY=VALUE" (as on the command line), or the text
    a template rendered to (JSON, or the Python form of a mapping or a list)."""
    value = _literal(value, "set")
    if isinstance(value, dict):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise AirflowFailException(f"set= is a mapping of overrides or a list of 'KEY=VALUE', not {value!r}")


def rendered_inputs(value) -> dict:
    """`inputs=` as it arrived at run time: a mapping of input names to values, or the text a template rendered to."""
    value = _literal(value, "inputs")
    if not isinstance(value, dict):
        raise AirflowFailException(f"inputs= is a mapping of input names to values, not {value!r}")
    return value


def _literal(value, field: str):
    if not isinstance(value, str):
        return value or {}
    import ast
    import json

    text = value.strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise AirflowFailException(f"{field}= rendered to {value!r}, which is neither JSON nor a Python mapping") from None


class _LineLogger:
    """Forwards a job's log chunks into the task log, one record per line."""

    def __init__(self, log) -> None:
        self.log = log

    def __call__(self, text: str) -> None:
        for line in text.splitlines():
            self.log.info("%s", line)


def airflow_tags(context) -> dict[str, str]:
    ti = context["ti"]
    tags = {"mljobs.airflow.dag_id": ti.dag_id, "mljobs.airflow.run_id": context["run_id"],
            "mljobs.airflow.task_id": ti.task_id, "mljobs.airflow.try_number": str(ti.try_number)}
    if getattr(ti, "map_index", -1) >= 0:
        tags["mljobs.airflow.map_index"] = str(ti.map_index)
    return tags
