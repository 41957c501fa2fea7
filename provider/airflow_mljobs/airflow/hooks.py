"""The MLflow connection: where job records go. Host = tracking URI; extra `home` = the workspace folder.

With no connection defined, jobs use the embedded store (`$MLJOBS_HOME`, or `.mljobs/` in the worker's
current directory), or `MLFLOW_TRACKING_URI` when the worker has it set.
"""

from __future__ import annotations

from airflow.sdk import BaseHook


class MlflowHook(BaseHook):
    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow (mljobs)"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict:
        return {
            "hidden_fields": ["schema", "login", "password", "port"],
            "relabeling": {"host": "Tracking URI"},
            "placeholders": {"host": "http://127.0.0.1:5000 or sqlite:////path/mlflow.db",
                             "extra": '{"home": "/srv/mljobs"}'},
        }

    def settings(self) -> tuple[str | None, str | None]:
        """(tracking_uri, home); both None when the connection is not defined."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            if self.mlflow_conn_id != self.default_conn_name:  # named on purpose: a typo must not record elsewhere
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(
                    f"the MLflow connection '{self.mlflow_conn_id}' is not defined; define it, or leave mlflow_conn_id "
                    f"out (then '{self.default_conn_name}' if defined, else the worker's MLFLOW_TRACKING_URI or the "
                    f"embedded store)") from None
            return None, None
        uri = conn.host or None
        if uri and conn.conn_type == "mlflow" and "://" not in uri:
            uri = f"http://{uri}" + (f":{conn.port}" if conn.port else "")
        return uri, conn.extra_dejson.get("home")

    def get_engine(self):
        uri, home = self.settings()
        return task_engine(uri, home)


def task_engine(tracking_uri: str | None, home: str | None):
    """The engine of a task instance: a process of its own on a worker, which makes a few calls, as a CLI
    command does (so it goes through the workspace's tracking server when one runs)."""
    from ..engine import Engine

    return Engine(home=home, tracking_uri=tracking_uri, prefer_server=True)
