"""Tune after ETL, then retrain with the best parameters: every trial is a task instance named by its values.

Trigger it with another budget from the UI (`trials`), or another learning-rate range through `set`.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG, Param, task

from airflow_mljobs.airflow.operators import CommandJobOperator
from airflow_mljobs.airflow.sweep import sweep_job

with DAG(
    dag_id="iris_sweep",
    schedule=None,
    catchup=False,
    params={"trials": Param(6, type="integer", minimum=1, maximum=1000)},
    tags=["mljobs", "example", "sweep"],
) as dag:

    @task
    def extract(**context) -> str:
        """Today's data: scikit-learn's bundled iris as a CSV in a folder of this run."""
        from sklearn.datasets import load_iris

        data = load_iris()
        folder = Path(os.environ.get("MLJOBS_HOME", ".mljobs")) / "etl" / context["run_id"].replace(":", "_").replace("+", "_")
        folder.mkdir(parents=True, exist_ok=True)
        rows = "".join(",".join(f"{v:.1f}" for v in row) + f",{data.target_names[t]}\n" for row, t in zip(data.data, data.target))
        path = folder / "iris.csv"
        path.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n" + rows)
        return str(path)

    tune = sweep_job(
        "tune",
        job="jobs/iris/job-sweep.yml",
        inputs={"iris_csv": "{{ ti.xcom_pull(task_ids='extract') }}"},
        set={"limits.max_total_trials": "{{ params.trials }}"},
        experiment_name="iris-sweep-airflow",
    )

    best = "ti.xcom_pull(task_ids='tune.best')['params']"
    retrain = CommandJobOperator(
        task_id="retrain",
        job="jobs/iris/job.yml",
        inputs={
            "iris_csv": "{{ ti.xcom_pull(task_ids='extract') }}",
            "n_estimators": "{{ " + best + "['n_estimators'] }}",
            "learning_rate": "{{ " + best + "['learning_rate'] }}",
            "max_depth": "{{ " + best + "['max_depth'] }}",
        },
        experiment_name="iris-sweep-airflow",
    )

    extract() >> tune >> retrain
