"""`--set`: dotted paths, list indexes, JSON values; applied before validation."""

import pytest

from airflow_mljobs.spec import SpecError, load
from airflow_mljobs.spec.overrides import parse_override

SWEEP = """
type: sweep
trial:
  command: python t.py --k ${{search_space.kernel}}
  resources:
    docker_args: [--ipc=host, --cpus=1]
sampling_algorithm: random
search_space:
  kernel: {type: choice, values: [rbf]}
objective: {goal: maximize, primary_metric: acc}
"""


@pytest.mark.parametrize("text, path, value", [
    ("inputs.lr=0.1", ("inputs", "lr"), 0.1),
    ("inputs.name=hello there", ("inputs", "name"), "hello there"),
    ("a.b[0]=x", ("a", "b", 0), "x"),
    ('search_space.kernel.values=["rbf","linear"]', ("search_space", "kernel", "values"), ["rbf", "linear"]),
    ('tags["team.name"]=ml', ("tags", "team.name"), "ml"),
    ("flag=true", ("flag",), True),
    ("code=01", ("code",), "01"),
])
def test_parse(text, path, value):
    assert parse_override(text) == (path, value)


@pytest.mark.parametrize("bad", ["novalue", "=x", "a..b=1", "a[x]=1"])
def test_malformed_overrides_are_errors(bad, write_yaml):
    with pytest.raises(SpecError) as info:
        load(write_yaml("command: echo\n"), [bad])
    assert info.value.errors[0].mark.source.startswith("--set")


def test_overrides_apply_before_validation(write_yaml):
    path = write_yaml(SWEEP)
    doc = load(path, [
        'search_space.kernel.values=["rbf","linear"]',
        "trial.resources.docker_args[1]=--cpus=2",
        "limits.max_total_trials=8",
        "inputs.lr=0.5",
    ])
    assert doc.data["search_space"]["kernel"]["values"] == ["rbf", "linear"]
    assert doc.data["trial"]["resources"]["docker_args"] == ["--ipc=host", "--cpus=2"]
    assert doc.data["limits"]["max_total_trials"] == 8
    assert doc.data["inputs"]["lr"] == {"type": "number", "value": 0.5}


def test_an_invalid_override_is_located_at_the_set_argument(write_yaml):
    with pytest.raises(SpecError) as info:
        load(write_yaml(SWEEP), ["limits.max_total_trials=5000"])
    (error,) = info.value.errors
    assert error.mark.source == "--set limits.max_total_trials=5000"
    assert error.path == "limits.max_total_trials"


def test_seed_compute_target_override_works_on_a_modern_file(write_yaml):
    doc = load(write_yaml("command: echo\ncompute: azureml:cpu-cluster\n"), ["compute.target=local"])
    assert doc.data["compute"] == "local"
    assert any("replaces the value 'azureml:cpu-cluster'" in w.message for w in doc.warnings)


def test_list_index_out_of_range(write_yaml):
    with pytest.raises(SpecError, match=r"no list item \[5\]"):
        load(write_yaml(SWEEP), ["trial.resources.docker_args[5]=x"])


def test_mapping_overrides_from_python(write_yaml):
    doc = load(write_yaml(SWEEP), {"limits.max_total_trials": 3, "search_space.kernel.values": ["a", "b"]})
    assert doc.model.limits.max_total_trials == 3
    assert doc.model.search_space["kernel"]["values"] == ["a", "b"]
