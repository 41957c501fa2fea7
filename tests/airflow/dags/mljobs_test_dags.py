"""DAGs that exercise CommandJobOperator's failure paths: a failing job, a task timeout, a retry."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG

from airflow_mljobs.airflow.operators import CommandJobOperator

HOME = os.environ.get("MLJOBS_HOME", ".")

with DAG(dag_id="mljobs_failing", schedule=None, catchup=False):
    CommandJobOperator(
        task_id="fail",
        job={"command": "echo working; echo 'final words before dying' >&2; exit 5", "experiment_name": "airflow-tests"},
    )

with DAG(dag_id="mljobs_timeout", schedule=None, catchup=False):
    CommandJobOperator(
        task_id="sleepy",
        job={"command": "echo $$ > pids; sleep 300 & echo $! >> pids; wait", "experiment_name": "airflow-tests"},
        execution_timeout=timedelta(seconds=4),
    )

with DAG(dag_id="mljobs_retry", schedule=None, catchup=False):
    # fails on the first try (no marker yet), succeeds on the second
    CommandJobOperator(
        task_id="flaky",
        job={"command": f"if [ -f {HOME}/flaky-marker ]; then echo second try; else touch {HOME}/flaky-marker; exit 9; fi",
             "experiment_name": "airflow-tests"},
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
