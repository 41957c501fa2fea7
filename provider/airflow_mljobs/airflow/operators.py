"""CommandJobOperator: run a command job YAML as an Airflow task, its log in the task log, its record in MLflow.

    train = CommandJobOperator(
        task_id="train",
        job="jobs/iris/job.yml",                       # relative to the DAG file, or a mapping
        inputs={"iris_csv": "{{ ti.xcom_pull('extract') }}"},
        set={"inputs.n_estimators": 100},
    )

The job's name comes from the task instance (dag, run, task, map index), so a retry finds the job of the try
before: it attaches to it while it runs, returns its result if it completed, and starts afresh otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from .hooks import MlflowHook


class CommandJobOperator(BaseOperator):
    """Run an Azure ML command job YAML on local, docker or kubernetes compute; return its result as XCom.

    Args:
        job: a path to the job YAML (relative paths are read from the DAG file's folder), or a mapping.
        set: `--set` overrides, `{"inputs.lr": 0.1, "resources.instance_count": 2}`.
        inputs: input values by name; a string given to a data input sets its `path`.
        compute: the compute to run on (`local`, `docker`, a registered name), over the YAML's.
        name: the job's name; by default derived from the task instance.
        experiment_name: the MLflow experiment, over the YAML's.
        mlflow_conn_id: the MLflow connection (tracking URI in its host field).
    """

    template_fields: Sequence[str] = ("job", "overrides", "inputs", "compute", "job_name", "experiment_name")
    template_fields_renderers = {"job": "yaml", "overrides": "json", "inputs": "json"}
    ui_color = "#d5e8f7"

    def __init__(self, *, job: str | dict, set: dict | None = None, inputs: dict | None = None,  # noqa: A002
                 compute: str | None = None, name: str | None = None, experiment_name: str | None = None,
                 mlflow_conn_id: str = MlflowHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.overrides = dict(set or {})
        self.inputs = dict(inputs or {})
        self.compute = compute
        self.job_name = name
        self.experiment_name = experiment_name
        self.mlflow_conn_id = mlflow_conn_id
        self._submission = None
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = MlflowHook(self.mlflow_conn_id).get_engine()
        return self._engine

    def execute(self, context) -> dict:
        engine = self.engine
        document = engine.load(self._job_source(), self.overrides, inputs=self.inputs, compute=self.compute,
                               base_dir=self._dag_folder())
        for warning in document.warnings:
            self.log.warning("%s", warning)
        result = self._finished_before(context)
        if result is not None:
            self.log.info("job %s completed in an earlier try; returning its result", result.name)
            return result.to_dict()
        self._submission = engine.submit(document, name=self._name_for(context), experiment_name=self.experiment_name,
                                         tags=airflow_tags(context), log=_LineLogger(self.log))
        self.log.info("job %s: MLflow run %s%s", self._submission.name, self._submission.run_id,
                      " (attached to the running job)" if self._submission.reattached else "")
        for note in self._submission.notes:
            self.log.info("%s", note)
        outcome = engine.follow(self._submission, _LineLogger(self.log))
        result = engine.finalize(self._submission, outcome)
        if result.status != "Completed":
            tail = f"\n--- last lines of the log ---\n{result.log_tail}" if result.log_tail else ""
            raise AirflowException(f"job {result.name} {result.status}: {result.reason}{tail}")
        return result.to_dict()

    def on_kill(self) -> None:
        submission = self._submission
        if submission is None:
            return
        outcome = submission.handle.cancel("killed by Airflow")
        self.engine.finalize(submission, outcome)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _dag_folder(self) -> Path | None:
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        return Path(fileloc).parent if fileloc else None

    def _job_source(self):
        if isinstance(self.job, dict):
            return self.job
        path = Path(self.job)
        folder = self._dag_folder()
        return path if path.is_absolute() or folder is None else folder / path

    def _base_name(self, context) -> str:
        from ..naming import safe_name

        if self.job_name:
            return self.job_name
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return safe_name(ti.dag_id, context["run_id"], ti.task_id, str(map_index) if map_index >= 0 else "")

    def _names_of_earlier_tries(self, context) -> list[str]:
        base = self._base_name(context)
        try_number = context["ti"].try_number
        return [base] + [f"{base}-try{n}" for n in range(2, try_number)]

    def _name_for(self, context) -> str:
        """The name of a job of an earlier try that still runs (to attach), or a new one for this try."""
        for name in self._names_of_earlier_tries(context):
            run = self.engine.tracker.find_job(name)
            if run is not None and run.data.tags.get("mljobs.status") not in ("Completed", "Failed", "Canceled"):
                return name
        try_number = context["ti"].try_number
        base = self._base_name(context)
        return base if try_number <= 1 else f"{base}-try{try_number}"

    def _finished_before(self, context):
        """The result of an earlier try's job that completed, so that a retry never runs it twice."""
        from ..engine import JobResult

        for name in self._names_of_earlier_tries(context)[: max(0, context["ti"].try_number - 1)]:
            run = self.engine.tracker.find_job(name)
            if run is not None and run.data.tags.get("mljobs.status") == "Completed":
                record = self.engine.tracker.record(run)
                return JobResult(name, "Completed", record.run_id, record.experiment_id, 0, None, record.metrics())
        return None


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
