"""A real Airflow 3 on SQLite in a temporary AIRFLOW_HOME; DAGs run with `airflow dags test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

AIRFLOW = str(Path(sys.executable).parent / "airflow")


class AirflowHome:
    def __init__(self, root: Path, dags_folder: Path) -> None:
        self.root = root
        self.mljobs_home = root / "mljobs"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING_URI"))},
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "MLJOBS_HOME": str(self.mljobs_home),
        }
        result = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr

    def dags_test(self, dag_id: str, *args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([AIRFLOW, "dags", "test", dag_id, *args], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def dag_test_in_fixed_order(self, dag_id: str, run_after: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """`dag.test()` with a fixed run id and hash seed. It runs the ready task instances of a step in the order
        of a set, which follows string hashes of their keys (run id included): fixed, the mapped instances run in a
        fixed order, which the tests assert."""
        return subprocess.run(self.fixed_order_command(dag_id, run_after), env={**self.env, "PYTHONHASHSEED": "0"},
                              capture_output=True, text=True, timeout=timeout, cwd=self.root)

    @staticmethod
    def fixed_order_command(dag_id: str, run_after: str) -> list[str]:
        """The command `dag_test_in_fixed_order` runs (with PYTHONHASHSEED=0), for a test that runs it in the
        background."""
        script = ("import sys; from datetime import datetime, timezone; from airflow.dag_processing.dagbag import DagBag; "
                  f"dag = DagBag().get_dag({dag_id!r}); "
                  f"when = datetime.fromisoformat({run_after!r}).replace(tzinfo=timezone.utc); "
                  "run = dag.test(run_after=when, logical_date=when); "
                  "sys.exit(0 if run.state == 'success' else 1)")
        return [sys.executable, "-c", script]

    def engine(self):
        from airflow_mljobs.engine import Engine

        return Engine(home=self.mljobs_home)


def _home(folder: Path, dags: Path):
    home = AirflowHome(folder, dags)
    yield home
    from airflow_mljobs.tracking.server import stop_server

    stop_server(home.mljobs_home)  # container jobs started one for this workspace


@pytest.fixture(scope="session")
def example_airflow(tmp_path_factory):
    yield from _home(tmp_path_factory.mktemp("example-airflow"), ROOT / "dags")


@pytest.fixture(scope="session")
def test_airflow(tmp_path_factory):
    yield from _home(tmp_path_factory.mktemp("test-airflow"), Path(__file__).parent / "dags")
