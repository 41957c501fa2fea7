"""The published schemas are valid draft 2020-12 and the package ships the same files."""

import json

import pytest
from jsonschema import Draft202012Validator

from airflow_mljobs.spec.schema import SCHEMA_FILES, schema_text
from tests.helpers import SCHEMAS


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_2020_12(name):
    document = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)
    assert schema_text(name) == (SCHEMAS / f"{name}.schema.json").read_text()


def test_sweep_schema_knows_the_ten_distributions():
    document = json.loads((SCHEMAS / "sweepJob.schema.json").read_text())
    assert set(document["$defs"]["distribution"]["properties"]["type"]["enum"]) == {
        "choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
        "lognormal", "qlognormal",
    }
