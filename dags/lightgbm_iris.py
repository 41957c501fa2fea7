"""The seed document's LightGBM-on-iris job, one YAML run twice: on this machine and in its Docker image.

The 2021 YAML (`dags/jobs/seed-2021-05/job.yml`) names `compute: {target: local}`; the second task overrides
the compute, and the job runs in `python:3.11-slim` with the conda file's packages layered on it.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_mljobs.airflow.operators import CommandJobOperator

with DAG(dag_id="lightgbm_iris", schedule=None, catchup=False, tags=["mljobs", "example", "docker"]) as dag:
    on_local = CommandJobOperator(task_id="train_local", job="jobs/seed-2021-05/job.yml",
                                  experiment_name="lightgbm-iris-airflow")
    in_docker = CommandJobOperator(task_id="train_docker", job="jobs/seed-2021-05/job.yml", compute="docker",
                                   experiment_name="lightgbm-iris-airflow")

    @task
    def compare(local: dict, docker: dict) -> dict:
        """Both runs logged the same metric with MLflow autologging; report them side by side."""
        metric = "test-multi_logloss"
        summary = {"local": local["metrics"][metric], "docker": docker["metrics"][metric]}
        print(f"{metric}: local {summary['local']:.4f}, docker {summary['docker']:.4f}")
        return summary

    compare(on_local.output, in_docker.output)
