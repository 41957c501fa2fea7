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

with DAG(dag_id="mljobs_skip", schedule=None, catchup=False):
    CommandJobOperator(task_id="nothing_new", skip_on_exit_code=99,
                       job={"command": "echo no new data; exit 99", "experiment_name": "airflow-tests"})
    CommandJobOperator(task_id="broken", skip_on_exit_code=[99, 100],
                       job={"command": "exit 3", "experiment_name": "airflow-tests"})

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

# Waits for a file in its working directory, so that a test can kill the task while the job runs.
WAIT_FOR_GO = "echo started; while [ ! -f go ]; do sleep 0.2; done; echo finished"

with DAG(dag_id="mljobs_docker_crash", schedule=None, catchup=False):
    CommandJobOperator(
        task_id="train",
        job={"command": WAIT_FOR_GO, "environment": {"image": "python:3.11-slim"}, "compute": "docker",
             "experiment_name": "airflow-crash"},
    )

with DAG(dag_id="mljobs_local_crash", schedule=None, catchup=False):
    CommandJobOperator(task_id="train", job={"command": WAIT_FOR_GO, "experiment_name": "airflow-crash"})

with DAG(dag_id="mljobs_deferrable", schedule=None, catchup=False):
    CommandJobOperator(
        task_id="train",
        job={"command": "echo from a deferred job; python -c 'import mlflow; mlflow.log_metric(\"m\", 3)'; echo its last line",
             "environment": {"image": "python:3.11-slim", "conda_file": {"dependencies": [{"pip": ["mlflow-skinny"]}]}},
             "compute": "docker", "experiment_name": "airflow-deferrable"},
        deferrable=True,
        poll_interval=0.5,
    )

with DAG(dag_id="mljobs_docker_connection", schedule=None, catchup=False):
    CommandJobOperator(
        task_id="train",
        job={"command": "echo on the engine of the connection", "environment": {"image": "python:3.11-slim"},
             "compute": "docker", "experiment_name": "airflow-docker-connection"},
        docker_conn_id="docker_engine",
    )

from airflow_mljobs.airflow.sweep import sweep_job  # noqa: E402

with DAG(dag_id="mljobs_bad_sweep", schedule=None, catchup=False):
    sweep_job("tune", max_concurrent_trials=1, job={
        "type": "sweep", "trial": {"command": "echo ${{search_space.x}}"}, "sampling_algorithm": "random",
        "search_space": {"x": {"type": "choice", "values": [1]}},
        "objective": {"goal": "maximize", "primary_metrc": "m"}})

with DAG(dag_id="mljobs_bindings_in_a_mapping", schedule=None, catchup=False, params={"who": "airflow"}):
    CommandJobOperator(
        task_id="greet",
        job={"command": "echo hello ${{inputs.who}} from {{ params.who }}", "inputs": {"who": "bindings"},
             "experiment_name": "airflow-tests"},
    )

CURVE = ("python -c \"import sys, time, mlflow; q = float(sys.argv[1]); "
         "[(mlflow.log_metric('score', q * e / 6, step=e), time.sleep(0.4)) for e in range(1, 7)]\" "
         "${{search_space.quality}}")

with DAG(dag_id="mljobs_sweep_policy", schedule=None, catchup=False):
    sweep_job("tune", max_concurrent_trials=1, job={
        "type": "sweep", "trial": {"command": CURVE}, "sampling_algorithm": "grid",
        "search_space": {"quality": {"type": "choice", "values": [0.9, 0.95, 0.1]}},
        "objective": {"goal": "maximize", "primary_metric": "score"},
        "early_termination": {"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 2},
        "experiment_name": "airflow-sweep-policy"})

with DAG(dag_id="mljobs_docker_sweep", schedule=None, catchup=False):
    sweep_job("tune", max_concurrent_trials=1, job={
        "type": "sweep",
        "trial": {"command": CURVE.replace("python ", "python3 ", 1),
                  "environment": {"image": "python:3.11-slim",
                                  "conda_file": {"dependencies": [{"pip": ["mlflow-skinny"]}]}}},
        "compute": "docker", "sampling_algorithm": "grid",
        "search_space": {"quality": {"type": "choice", "values": [0.9, 0.95, 0.1]}},
        "objective": {"goal": "maximize", "primary_metric": "score"},
        "early_termination": {"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 2},
        "experiment_name": "airflow-docker-sweep"})

with DAG(dag_id="mljobs_bayesian_waves", schedule=None, catchup=False):
    sweep_job("tune", job={
        "type": "sweep", "trial": {"command": WAIT_FOR_GO + " && python -c \"import mlflow; "
                                   "mlflow.log_metric('m', ${{search_space.x}})\""},
        "sampling_algorithm": {"type": "bayesian", "seed": 3},
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "objective": {"goal": "maximize", "primary_metric": "m"},
        "limits": {"max_total_trials": 4, "max_concurrent_trials": 2, "trial_timeout": 300},
        "experiment_name": "airflow-waves"})

FAILS_ONCE = ('if [ ! -f "$MLJOBS_HOME/failed-once" ]; then touch "$MLJOBS_HOME/failed-once"; exit 3; fi; '
              "python -c \"import mlflow; mlflow.log_metric('m', ${{search_space.x}})\"")

with DAG(dag_id="mljobs_sweep_retry", schedule=None, catchup=False,
         default_args={"retries": 1, "retry_delay": timedelta(seconds=0)}):
    sweep_job("tune", max_concurrent_trials=1, job={
        "type": "sweep", "trial": {"command": FAILS_ONCE}, "sampling_algorithm": {"type": "random", "seed": 1},
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "objective": {"goal": "maximize", "primary_metric": "m"},
        "limits": {"max_total_trials": 2, "max_concurrent_trials": 1}, "experiment_name": "airflow-sweep-retry"})

with DAG(dag_id="mljobs_timeout_while_building", schedule=None, catchup=False):
    # the job, an image build that outlasts the task's timeout, is named by the run's conf
    CommandJobOperator(task_id="build", job="{{ dag_run.conf['job'] }}", execution_timeout=timedelta(seconds=20))

with DAG(dag_id="mljobs_crash_while_building", schedule=None, catchup=False):
    CommandJobOperator(task_id="build", job="{{ dag_run.conf['job'] }}")  # its worker is killed during the build

with DAG(dag_id="mljobs_sweep_trial_timeout", schedule=None, catchup=False,
         default_args={"execution_timeout": timedelta(seconds=15)}):
    # the trial outlasts its task's execution_timeout
    sweep_job("tune", max_concurrent_trials=1, job={
        "type": "sweep", "trial": {"command": "echo $$ > pids; sleep 300 & echo $! >> pids; wait"},
        "sampling_algorithm": "random", "search_space": {"x": {"type": "choice", "values": [1]}},
        "objective": {"goal": "maximize", "primary_metric": "m"},
        "limits": {"max_total_trials": 1}, "experiment_name": "airflow-sweep-trial-timeout"})

with DAG(dag_id="mljobs_links", schedule=None, catchup=False):
    # every task links to its MLflow run: a job, a failed job, a sweep's parent and its trials
    CommandJobOperator(task_id="train", job={"command": "echo linked", "experiment_name": "airflow-links"})
    CommandJobOperator(task_id="fail", job={"command": "exit 4", "experiment_name": "airflow-links"})
    sweep_job("tune", max_concurrent_trials=1, job={
        "type": "sweep", "trial": {"command": "python -c \"import mlflow; mlflow.log_metric('m', ${{search_space.x}})\""},
        "sampling_algorithm": "grid", "search_space": {"x": {"type": "choice", "values": [1, 2]}},
        "objective": {"goal": "maximize", "primary_metric": "m"}, "experiment_name": "airflow-links"})

from airflow_mljobs.airflow.sensors import JobSensor  # noqa: E402

with DAG(dag_id="mljobs_sensor", schedule=None, catchup=False):
    # waits for a job that something else started, named by the run's conf
    JobSensor(task_id="wait", job_name="{{ dag_run.conf['job'] }}", poke_interval=0.5, timeout=120)
    JobSensor(task_id="wait_deferred", job_name="{{ dag_run.conf['job'] }}", poke_interval=0.5, timeout=120,
              deferrable=True)

with DAG(dag_id="mljobs_deferrable_timeout", schedule=None, catchup=False):
    # deferred, the job outlives the task's execution_timeout
    CommandJobOperator(
        task_id="sleepy",
        job={"command": "echo $$ > pids; sleep 300 & echo $! >> pids; wait", "experiment_name": "airflow-tests"},
        deferrable=True, poll_interval=0.5, execution_timeout=timedelta(seconds=4),
    )

with DAG(dag_id="mljobs_fixed_name", schedule=None, catchup=False):
    # a fixed job name that an earlier DAG run's job holds already
    CommandJobOperator(task_id="train", name="{{ dag_run.conf['name'] }}", retries=1, retry_delay=timedelta(seconds=0),
                       job={"command": "echo from the fixed name", "experiment_name": "airflow-tests"})

from airflow.sdk import task  # noqa: E402

GREET = {"command": "echo hello ${{inputs.who}} version $VERSION", "inputs": {"who": "yaml"},
         "environment_variables": {"VERSION": "0"}, "experiment_name": "airflow-arguments"}

with DAG(dag_id="mljobs_arguments", schedule=None, catchup=False):
    # inputs from an upstream task's XCom, overrides from the run's conf (a template) or as the command line writes them

    @task
    def who() -> dict:
        return {"who": "xcom"}

    CommandJobOperator(task_id="from_xcom_and_conf", job=GREET, inputs=who(), set="{{ dag_run.conf['overrides'] }}")
    CommandJobOperator(task_id="as_a_list", job=GREET, set=['environment_variables.VERSION="2.10"'])

with DAG(dag_id="mljobs_input_typo", schedule=None, catchup=False):
    CommandJobOperator(task_id="typo", job=GREET, inputs={"woh": "x"}, retries=2)

with DAG(dag_id="mljobs_connection_typo", schedule=None, catchup=False):
    CommandJobOperator(task_id="train", job=GREET, mlflow_conn_id="prod_mlfow")

with DAG(dag_id="mljobs_dag_experiment", schedule=None, catchup=False):
    CommandJobOperator(task_id="train", job={"command": "echo in the experiment of the DAG"})  # no experiment named
