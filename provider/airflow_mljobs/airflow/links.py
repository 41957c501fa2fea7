"""The task's MLflow run, one click from the task in Airflow's UI.

Airflow 3 resolves a link on the worker when the task ends, from the operator that ran, and keeps the address as
an XCom. The operator notes its run's page as soon as the run exists (`note_run`), so a failed job has its link
too; where no UI serves the store (the embedded store while its tracking server is not running) it leaves the
link out, rather than store an empty address for every task instance.
"""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink


class MlflowRunLink(BaseOperatorLink):
    """The job's run, a trial's run, or a sweep's parent run, in the MLflow UI that serves the store."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        return getattr(operator, "mlflow_run_page", None) or ""


def note_run(operator, config, experiment_id: str, run_id: str) -> None:
    """Remember the page of the task's run for its link; with no UI to point at, the task has no link."""
    from ..tracking.web import run_page

    operator.mlflow_run_page = run_page(config, experiment_id, run_id)
    if operator.mlflow_run_page is None:
        operator.operator_extra_links = ()
