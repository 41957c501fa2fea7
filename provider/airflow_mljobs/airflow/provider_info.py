"""What Airflow's provider manager reads through the `apache_airflow_provider` entry point."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-mljobs",
        "name": "ML jobs (Azure ML CLI 2.0 job YAML)",
        "description": "Run Azure ML CLI 2.0 command and sweep job YAML on local processes, Docker and "
        "Kubernetes, with MLflow as the run history.",
        "integrations": [{"integration-name": "ML jobs", "tags": ["software"]}],
        "operators": [{"integration-name": "ML jobs", "python-modules": ["airflow_mljobs.airflow.operators"]}],
        "sensors": [{"integration-name": "ML jobs", "python-modules": ["airflow_mljobs.airflow.sensors"]}],
        "triggers": [{"integration-name": "ML jobs", "python-modules": ["airflow_mljobs.airflow.triggers"]}],
        "hooks": [{"integration-name": "ML jobs", "python-modules": ["airflow_mljobs.airflow.hooks"]}],
        "extra-links": ["airflow_mljobs.airflow.links.MlflowRunLink"],
        "connection-types": [{"connection-type": "mlflow", "hook-class-name": "airflow_mljobs.airflow.hooks.MlflowHook",
                              "hook-name": "MLflow (mljobs)"}],
    }
