"""The shared setup: an `mlflow server` with proxied artifacts instead of the embedded store."""

from __future__ import annotations

import pytest

from airflow_mljobs.engine import Engine

pytestmark = pytest.mark.slow


def test_jobs_record_into_a_tracking_server(mlflow_server, project, unique, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    engine = Engine(home=tmp_path / "ws")
    assert engine.config.tracking_uri == mlflow_server and not engine.config.embedded
    path = project("""
        command: >-
          python -c "import mlflow; mlflow.log_metric('score', 0.75)" &&
          mkdir -p outputs && echo kept > outputs/kept.txt
    """)
    name = unique("served")
    result = engine.wait(engine.submit(engine.load(path), name=name))
    assert result.status == "Completed" and result.metrics == {"score": 0.75}
    assert not (tmp_path / "ws" / "mlflow.db").exists()  # nothing went to an embedded store
    engine.download(name, tmp_path / "down")
    assert (tmp_path / "down" / "artifacts" / "outputs" / "kept.txt").read_text() == "kept\n"
    other = Engine(home=tmp_path / "elsewhere", tracking_uri=mlflow_server)
    assert other.show(name)["status"] == "Completed"  # any machine pointing at the server sees the job
