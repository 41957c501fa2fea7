"""Run Azure ML CLI 2.0 job YAML on your own infrastructure, with MLflow as the run history.

Importing this package is cheap on purpose: Airflow imports provider modules while it parses DAG files,
so nothing here pulls in docker, kubernetes, mlflow or optuna.
"""

__version__ = "0.1.0"
