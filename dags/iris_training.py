"""Train after ETL: extract a CSV, train on it with an Azure ML command job, read the metric back from MLflow.

Trigger it with other inputs from the UI (the `n_estimators` and `learning_rate` params).
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG, Param, task

from airflow_mljobs.airflow.operators import CommandJobOperator

with DAG(
    dag_id="iris_training",
    schedule=None,
    catchup=False,
    params={"n_estimators": Param(40, type="integer", minimum=1), "learning_rate": Param(0.1, type="number")},
    tags=["mljobs", "example"],
) as dag:

    @task
    def extract(**context) -> str:
        """Write today's training data: scikit-learn's bundled iris, as a CSV in a folder of this run."""
        from sklearn.datasets import load_iris

        data = load_iris()
        home = Path(os.environ.get("MLJOBS_HOME", ".mljobs"))
        folder = home / "etl" / context["run_id"].replace(":", "_").replace("+", "_")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "iris.csv"
        header = "sepal_length,sepal_width,petal_length,petal_width,species\n"
        rows = (",".join(f"{v:.1f}" for v in row) + f",{data.target_names[t]}\n" for row, t in zip(data.data, data.target))
        path.write_text(header + "".join(rows))
        return str(path)

    train = CommandJobOperator(
        task_id="train",
        job="jobs/iris/job.yml",
        inputs={
            "iris_csv": "{{ ti.xcom_pull(task_ids='extract') }}",
            "n_estimators": "{{ params.n_estimators }}",
            "learning_rate": "{{ params.learning_rate }}",
        },
        experiment_name="iris-airflow",
    )

    @task
    def report(result: dict) -> float:
        """Read the metric back from the job's MLflow run (not from XCom), as a downstream consumer would."""
        from airflow_mljobs.airflow.hooks import MlflowHook

        run = MlflowHook().get_engine().tracker.client.get_run(result["run_id"])
        accuracy = run.data.metrics["test_accuracy"]
        print(f"job {result['name']} ({result['status']}): test_accuracy={accuracy:.3f}, model in {result['outputs']}")
        return accuracy

    extract() >> train
    report(train.output)
