"""Every example in dags/jobs loads as the kind its folder says, and points at our published schemas."""

from pathlib import Path

import pytest
import yaml

from airflow_mljobs.spec import load
from tests.helpers import JOBS

EXAMPLES = sorted(p for p in JOBS.rglob("*.yml") if p.parent.name != "environment" and p.name != "environment.yml")


def _expected_kind(path: Path) -> str:
    if path.parent.name == "compute":
        return "compute"
    if path.parent.name == "environments" or path.name == "env.yml":
        return "environment"
    return "sweep" if "sweep" in path.name else "command"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(JOBS)))
def test_example_loads(path):
    document = load(path)
    assert document.kind == _expected_kind(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(JOBS)))
def test_example_schema_reference(path):
    url = yaml.safe_load(path.read_text()).get("$schema", "")
    if url.startswith("https://azuremlschemas"):
        assert "20" in path.parent.name, "only the legacy-era examples keep Azure's schema URL"
    else:
        assert (path.parent / url).resolve().is_file(), url


def test_every_feature_has_an_example():
    text = "\n".join(p.read_text() for p in EXAMPLES)
    for feature in ("$[[", "optional: true", "conda_file", "environment_variables", "limits:", "outputs:",
                    "type: Pytorch", "type: tensorflow", "type: mpi", "shm_size", "docker_args", "services:",
                    "identity:", "queue_settings:", "sampling_algorithm:", "early_termination:", "type: sweep_job",
                    "timeout_minutes", "{inputs.", "file:", "folder:", "local_path", "build:", "rule: sobol"):
        assert feature in text, feature
