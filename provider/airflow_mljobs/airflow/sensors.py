"""JobSensor: wait in a DAG for a job that something else started (the CLI, another DAG, a colleague).

    wait = JobSensor(task_id="wait", job_name="iris-200", deferrable=True)

It reads the job's record, never its processes, so any job in the store can be waited for, wherever it runs.
The task succeeds when the job Completed and returns what `mljobs job show -n <name> -o json` prints; a job that
Failed or was Canceled fails it without retries (its end will not change); a name not yet in the store is waited
for, until the sensor's `timeout`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Sequence

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowFailException

from .hooks import MlflowHook
from .links import MlflowRunLink, note_run


class JobSensor(BaseSensorOperator):
    """Wait until the job `job_name` ends.

    Args:
        job_name: the job to wait for (templated).
        mlflow_conn_id: the MLflow connection of the store that holds the job's record.
        deferrable: wait in the triggerer, checking every `poke_interval` seconds, instead of a worker slot.
    """

    template_fields: Sequence[str] = ("job_name",)
    ui_color = "#d5f7e4"
    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, job_name: str, mlflow_conn_id: str = MlflowHook.default_conn_name,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.mlflow_conn_id = mlflow_conn_id
        self.deferrable = deferrable
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            self._engine = MlflowHook(self.mlflow_conn_id).get_engine()
        return self._engine

    def execute(self, context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        ended = self.poke(context)
        if ended:
            return ended.xcom_value
        from .triggers import JobStatusTrigger

        config = self.engine.config
        self.defer(trigger=JobStatusTrigger(self.job_name, str(config.home),
                                            None if config.embedded else config.tracking_uri, self.poke_interval),
                   method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def execute_complete(self, context, event: dict) -> Any:
        if event.get("status") == "Error":
            raise AirflowFailException(f"waiting for job {self.job_name} failed: {event['reason']}")
        return self._judge(event["job"]).xcom_value

    def poke(self, context) -> bool | PokeReturnValue:
        from ..engine import describe

        run = self.engine.job(self.job_name)  # its end recorded if it ended unwatched
        if run is None:
            self.log.info("no job named %s in %s yet", self.job_name, self.engine.config.tracking_uri)
            return False
        return self._judge(describe(run))

    def _judge(self, job: dict) -> bool | PokeReturnValue:
        from ..tracking.tags import TERMINAL

        note_run(self, self.engine.config, job["experiment_id"], job["run_id"])
        status = job["status"]
        if status not in TERMINAL:
            self.log.info("job %s is %s", self.job_name, status)
            return False
        if status != "Completed":
            raise AirflowFailException(f"job {self.job_name} {status}: {job.get('failure_reason') or 'no reason recorded'}")
        return PokeReturnValue(is_done=True, xcom_value=job)
