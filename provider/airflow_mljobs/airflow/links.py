"""The task's MLflow run, one click from the task in Airflow's UI.

Airflow 3 resolves a link on the worker when the task ends, from the operator that ran, and keeps the address as
an XCom: the operator knows its run by then (`mlflow_run`, set as soon as the run exists, so a failed job has its
link too).
"""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink


class MlflowRunLink(BaseOperatorLink):
    """The job's run, a trial's run, or a sweep's parent run, in the MLflow UI that serves the store; no link
    while none does (the embedded store before its tracking server runs)."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        run = getattr(operator, "mlflow_run", None)
        if run is None:
            return ""
        from ..tracking.web import run_page

        config, experiment_id, run_id = run
        return run_page(config, experiment_id, run_id) or ""
