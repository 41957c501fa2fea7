"""Sweeps whose trials log NaN or infinity: real trials, a real store; such values never make a best trial."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from airflow_mljobs.sweeps import NO_BEST_TAG, NONFINITE_TAG, SweepRunner
from airflow_mljobs.tracking import tags as T

SCORE = """
import sys
import mlflow
print(f"value={sys.argv[1]}")
mlflow.log_metric("score", float(sys.argv[1]))
"""


def sweep_file(project, values: str):
    return project(f"""
        type: sweep
        trial:
          command: python score.py ${{{{search_space.v}}}}
          code: src
        sampling_algorithm: grid
        search_space:
          v: {{type: choice, values: {values}}}
        objective: {{goal: maximize, primary_metric: score}}
        limits: {{max_total_trials: 3, max_concurrent_trials: 3}}
    """, {"src/score.py": SCORE}, name="sweep.yml")


def test_nan_and_inf_trials_never_win_and_download_fetches_the_finite_best(engine, project, unique):
    """Trial 0 (NaN) came first and won a plain max; trial 2 (inf) won as 1.79769e+308."""
    name = unique("nonfinite")
    lines = []
    result = SweepRunner(engine, engine.load(sweep_file(project, '["nan", "0.5", "inf"]')), name=name).run(
        write=lines.append)
    assert result.status == "Completed"
    assert result.best["name"] == f"{name}_1" and result.best["value"] == 0.5
    parent = engine.tracker.client.get_run(result.run_id)
    assert parent.data.tags["mljobs.best_trial"] == f"{name}_1"
    assert parent.data.metrics["best_score"] == 0.5
    assert parent.data.params["best.v"] == "0.5"
    assert parent.data.tags[NONFINITE_TAG] == "0,2" and NO_BEST_TAG not in parent.data.tags
    assert T.REASON not in parent.data.tags
    target = engine.home / f"download-{name}"
    engine.download(name, target)
    assert (target / "artifacts" / "user_logs" / "std_log.txt").read_text().strip() == "value=0.5"


def test_a_sweep_with_no_finite_value_has_no_best_and_says_so(project, unique, workspace, tmp_path):
    name = unique("all-nan")
    env = {**os.environ, "MLJOBS_HOME": str(workspace)}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f",
                             str(sweep_file(project, '["nan", "-nan", "inf"]')), "--name", name, "--stream"],
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    why = "no best trial: no completed trial ended with a finite value of 'score'"
    assert "Status: Completed" in result.stdout and f"Reason: {why}" in result.stdout
    assert "Best trial" not in result.stdout
    from airflow_mljobs.engine import Engine

    engine = Engine(home=workspace)
    parent = engine.tracker.find_job(name)
    assert parent.data.tags[NO_BEST_TAG].startswith(why) and parent.data.tags[T.REASON].startswith(why)
    assert "best_child_run_id" not in parent.data.tags and "mljobs.best_trial" not in parent.data.tags
    assert not any(math.isnan(v) for v in parent.data.metrics.values()) and "best_score" not in parent.data.metrics
    assert engine.show(name)["failure_reason"].startswith(why)
    engine.download(name, tmp_path / "down")  # the sweep's own files only: no trial is fetched as its best
    assert (tmp_path / "down" / "hd-artifacts" / "sweep" / "trials.csv").is_file()
    assert not (tmp_path / "down" / "artifacts").exists()
