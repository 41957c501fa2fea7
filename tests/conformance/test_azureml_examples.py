"""Conformance: the public Azure ML example YAMLs, read from ../shared when it is there.

Every command and sweep job loads as that kind; compute and environment files load as theirs; job types
outside scope give exactly one "not supported" error naming the type; anything else (conda files,
workspace settings, an empty placeholder) gives located errors and never a crash.
"""

from pathlib import Path

import pytest
import yaml

from airflow_mljobs.spec import SpecError, load
from tests.helpers import CORPUS

FILES = sorted(p for p in CORPUS.glob("*.y*ml")) if CORPUS.is_dir() else []
OUT_OF_SCOPE = {"pipeline", "automl", "spark", "parallel", "import", "data_transfer"}
COMPUTE = {"amlcompute", "computeinstance", "virtualmachine"}

pytestmark = pytest.mark.skipif(not FILES, reason=f"no conformance corpus at {CORPUS}")


def expectation(path: Path) -> str:
    """What the file is, judged from its raw text (independently of the loader under test)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        return "error"
    schema_url = str(data.get("$schema", ""))
    declared = str(data.get("type", "")).lower()
    if "Component" in schema_url:
        return "unsupported:component"
    if declared in OUT_OF_SCOPE:
        return f"unsupported:{declared}"
    if declared in COMPUTE:
        return "compute"
    if declared == "sweep":
        return "sweep"
    if "command" in data:
        return "command"
    if "environment.schema.json" in schema_url or "image" in data or "build" in data:
        return "environment"
    return "error"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_file(path):
    expected = expectation(path)
    if expected in ("command", "sweep", "compute", "environment"):
        document = load(path)
        assert document.kind == expected
        return
    with pytest.raises(SpecError) as info:
        load(path)
    errors = info.value.errors
    assert errors and all(e.mark.source == str(path) and e.mark.line >= 1 for e in errors)
    if expected.startswith("unsupported:"):
        (error,) = errors
        assert error.message.startswith(f"job type '{expected.split(':')[1]}' is not supported")


def test_corpus_covers_every_kind():
    kinds = {expectation(p) for p in FILES}
    assert {"command", "sweep", "compute", "environment", "unsupported:pipeline"} <= kinds
