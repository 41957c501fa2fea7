"""Paths of the repository that tests read."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "dags" / "jobs"
SCHEMAS = ROOT / "schemas"
CORPUS = ROOT.parent / "shared" / "corpus" / "azureml-examples"
