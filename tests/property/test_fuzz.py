"""Property-based: random YAML and random mutations of valid jobs give located errors, never a crash."""

import copy
import random

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_mljobs.spec import SpecError, load_text
from tests.helpers import JOBS

VALID = [p for p in sorted(JOBS.rglob("*.yml")) if "job" in p.name or p.parent.name == "distributed"]
BASES = {p: yaml.safe_load(p.read_text()) for p in VALID}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=20))
KEYS = ["type", "command", "inputs", "outputs", "environment", "compute", "resources", "distribution", "limits",
        "trial", "search_space", "objective", "sampling_algorithm", "early_termination", "path", "mode", "value",
        "image", "build", "values", "min_value", "max_value", "q", "upper", "code", "local_path", "data",
        "instance_count", "process_count", "goal", "primary_metric", "${{inputs.x}}", "x", "sweep_job"]
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10))
values = st.recursive(scalars, lambda children: st.one_of(st.lists(children, max_size=4),
                                                            st.dictionaries(keys, children, max_size=5)),
                      max_leaves=25)


def assert_located(text: str, name: str = "fuzz.yml", base_dir=None) -> None:
    try:
        load_text(text, name, base_dir=base_dir)
    except SpecError as error:
        assert error.errors, "a SpecError carries at least one error"
        for problem in error.errors:
            assert problem.mark.line >= 1 and problem.mark.column >= 1
            assert problem.mark.source == name or problem.mark.source.startswith("--set")
            assert problem.message


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text(text):
    assert_located(text)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_random_documents(document):
    assert_located(yaml.safe_dump(document))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _mutate(document, rng: random.Random, replacement, new_key):
    document = copy.deepcopy(document)
    paths = [p for p in _paths(document) if p]
    path = rng.choice(paths)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    action = rng.choice(["replace", "delete", "add", "rename"])
    if action == "replace":
        parent[path[-1]] = replacement
    elif action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[new_key] = replacement
    elif action == "rename" and isinstance(parent, dict):
        parent[str(path[-1]) + "x"] = parent.pop(path[-1])
    return document


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.randoms(use_true_random=False), values, keys, st.integers(1, 4))
def test_mutations_of_valid_jobs(path, rng, replacement, new_key, rounds):
    document = BASES[path]
    for _ in range(rounds):
        document = _mutate(document, rng, replacement, new_key)
    assert_located(yaml.safe_dump(document, sort_keys=False), path.name, base_dir=path.parent)
