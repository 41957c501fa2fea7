"""Every problem of a file at once, each with file, line, column, YAML path, message and hint."""

import pytest

from airflow_mljobs.spec import SpecError, load


def _errors(path):
    with pytest.raises(SpecError) as info:
        load(path)
    return info.value.errors


def test_all_problems_are_reported_together_with_places(write_yaml):
    path = write_yaml("""
        command: python train.py --lr ${{inputs.lr}} --d ${{inputs.dataa}}
        inputs:
          lr: 0.1
          data: {type: uri_fil, path: x.csv}
        enviroment:
          image: python:3.11
        resources:
          instance_count: two
        distribution: {type: pytorch, process_count_per_instance: 0}
    """)
    found = {(e.path, e.mark.line) for e in _errors(path)}
    assert found == {
        ("command", 1),
        ("inputs.data.type", 4),
        ("enviroment", 5),
        ("resources.instance_count", 8),
        ("distribution.process_count_per_instance", 9),
    }
    by_path = {e.path: e for e in _errors(path)}
    assert by_path["enviroment"].hint == "did you mean 'environment'?"
    assert by_path["inputs.data.type"].hint == "did you mean 'uri_file'?"
    assert by_path["command"].hint == "did you mean ${{inputs.data}}?"
    assert all(e.mark.source == str(path) and e.mark.column >= 1 for e in _errors(path))


def test_missing_required_keys_point_at_their_parent(write_yaml):
    errors = _errors(write_yaml("""
        type: sweep
        trial:
          command: python x.py
        search_space:
          a: {type: choice, values: [1, 2]}
        sampling_algorithm: random
        objective:
          goal: maximize
    """))
    (error,) = errors
    assert error.message == "missing required key 'primary_metric'"
    assert (error.path, error.mark.line) == ("objective", 7)


@pytest.mark.parametrize(
    "dimension, fragment",
    [
        ("{type: choice, values: []}", "should be non-empty"),
        ("{type: randint, upper: 0}", "minimum of 1"),
        ("{type: randint, lower: 1, upper: 5}", "unknown key 'lower'"),
        ("{type: uniform, min: 0, max_value: 1}", "unknown key 'min'"),
        ("{type: uniform, min_value: 2, max_value: 1}", "must be greater than min_value"),
        ("{type: quniform, min_value: 0, max_value: 1}", "missing required key 'q'"),
        ("{type: loguniform, min_value: 0.001, max_value: 1000}", "exponents"),
        ("{type: normal, mu: 0, sigma: 0}", "less than or equal to the minimum of 0"),
        ("{type: qlognormal, mu: 0, sigma: 1}", "missing required key 'q'"),
        ("{type: gaussian, mu: 0}", "is not one of"),
    ],
)
def test_search_space_distributions(write_yaml, dimension, fragment):
    errors = _errors(write_yaml(f"""
        type: sweep
        trial: {{command: python x.py}}
        sampling_algorithm: random
        search_space:
          p: {dimension}
        objective: {{goal: minimize, primary_metric: loss}}
    """))
    assert any(fragment in e.message or fragment in e.hint for e in errors), [str(e) for e in errors]
    assert all(e.path.startswith("search_space.p") for e in errors)


def test_all_ten_distributions_and_nested_choice_are_accepted(write_yaml):
    doc = load(write_yaml("""
        type: sweep
        trial:
          command: python x.py --m ${{search_space.model}}
        sampling_algorithm: {type: random, seed: 7, rule: sobol}
        search_space:
          a: {type: choice, values: [1, "two", 3.0]}
          b: {type: randint, upper: 10}
          c: {type: uniform, min_value: 0, max_value: 1}
          d: {type: quniform, min_value: 0, max_value: 10, q: 2}
          e: {type: loguniform, min_value: -5, max_value: 0}
          f: {type: qloguniform, min_value: 0, max_value: 5, q: 1}
          g: {type: normal, mu: 0, sigma: 1}
          h: {type: qnormal, mu: 10, sigma: 2, q: 1}
          i: {type: lognormal, mu: 0, sigma: 1}
          j: {type: qlognormal, mu: 0, sigma: 1, q: 1}
          model:
            type: choice
            values:
              - {name: svm, C: {type: uniform, min_value: 0.1, max_value: 10}}
              - {name: tree, depth: {type: Randint, upper: 8}}
        objective: {goal: Maximize, primary_metric: acc}
    """))
    assert len(doc.model.search_space) == 11
    assert doc.data["search_space"]["model"]["values"][1]["depth"]["type"] == "randint"
    assert doc.data["objective"]["goal"] == "maximize"


@pytest.mark.parametrize(
    "algorithm, dimension, ok",
    [
        ("grid", "{type: choice, values: [1, 2]}", True),
        ("grid", "{type: uniform, min_value: 0, max_value: 1}", False),
        ("bayesian", "{type: quniform, min_value: 0, max_value: 1, q: 0.1}", True),
        ("bayesian", "{type: loguniform, min_value: -3, max_value: 0}", False),
        ("random", "{type: lognormal, mu: 0, sigma: 1}", True),
    ],
)
def test_algorithm_constraints(write_yaml, algorithm, dimension, ok):
    path = write_yaml(f"""
        type: sweep
        trial: {{command: python x.py}}
        sampling_algorithm: {algorithm}
        search_space:
          p: {dimension}
        objective: {{goal: minimize, primary_metric: loss}}
    """)
    if ok:
        load(path)
    else:
        (error,) = _errors(path)
        assert f"{algorithm} sampling takes only" in error.message
        assert error.path == "search_space.p.type"


@pytest.mark.parametrize(
    "policy, fragment",
    [
        ("{type: bandit, slack_factor: 0.1, slack_amount: 0.2}", "exactly one of slack_factor and slack_amount"),
        ("{type: bandit}", "exactly one of slack_factor and slack_amount"),
        ("{type: truncation_selection}", "missing required key 'truncation_percentage'"),
        ("{type: truncation_selection, truncation_percentage: 100}", "maximum of 99"),
        ("{type: median_stopping, slack_factor: 0.1}", "unknown key 'slack_factor'"),
        ("{type: median_stoping}", "did you mean 'median_stopping'"),
    ],
)
def test_early_termination_policies(write_yaml, policy, fragment):
    errors = _errors(write_yaml(f"""
        type: sweep
        trial: {{command: python x.py}}
        sampling_algorithm: random
        search_space: {{p: {{type: choice, values: [1]}}}}
        objective: {{goal: minimize, primary_metric: loss}}
        early_termination: {policy}
    """))
    assert any(fragment in f"{e.message} {e.hint}" for e in errors), [str(e) for e in errors]


def test_the_three_policies_load(write_yaml):
    for policy in ("{type: bandit, slack_amount: 0.1}", "{type: median_stopping, delay_evaluation: 5}",
                   "{type: truncation_selection, truncation_percentage: 20}"):
        doc = load(write_yaml(f"""
            type: sweep
            trial: {{command: python x.py}}
            sampling_algorithm: random
            search_space: {{p: {{type: choice, values: [1]}}}}
            objective: {{goal: minimize, primary_metric: loss}}
            early_termination: {policy}
        """))
        assert doc.model.early_termination.evaluation_interval == 1


@pytest.mark.parametrize("limits, fragment", [
    ("{max_total_trials: 0}", "minimum of 1"),
    ("{max_total_trials: 1001}", "maximum of 1000"),
    ("{max_concurrent_trials: 2000}", "maximum of 1000"),
    ("{timeout: -1}", "minimum of 1"),
    ("{trial_timeout: 1.5}", "expected integer"),
])
def test_sweep_limits_ranges(write_yaml, limits, fragment):
    errors = _errors(write_yaml(f"""
        type: sweep
        trial: {{command: python x.py}}
        sampling_algorithm: random
        search_space: {{p: {{type: choice, values: [1]}}}}
        objective: {{goal: minimize, primary_metric: loss}}
        limits: {limits}
    """))
    assert any(fragment in e.message for e in errors), [str(e) for e in errors]


def test_grid_larger_than_max_total_trials_warns(write_yaml):
    doc = load(write_yaml("""
        type: sweep
        trial: {command: python x.py}
        sampling_algorithm: grid
        search_space: {a: {type: choice, values: [1, 2, 3]}, b: {type: choice, values: [x, y]}}
        objective: {goal: minimize, primary_metric: loss}
        limits: {max_total_trials: 4}
    """))
    assert any("the grid has 6 points" in w.message for w in doc.warnings)


@pytest.mark.parametrize("job_type", ["pipeline", "automl", "spark", "parallel", "Pipeline"])
def test_out_of_scope_job_types_give_one_clear_error(write_yaml, job_type):
    (error,) = _errors(write_yaml(f"type: {job_type}\njobs: {{}}\n"))
    assert error.message == f"job type '{job_type.lower()}' is not supported"
    assert error.path == "type" and error.mark.line == 1


def test_environment_rules(write_yaml):
    (error,) = _errors(write_yaml("""
        command: x
        environment:
          image: python
          build: {path: ctx}
    """))
    assert "image and build exclude each other" in error.message
    (error,) = _errors(write_yaml("""
        command: x
        environment:
          build: {path: ctx, dockerfile_path: ../Dockerfile}
    """))
    assert error.path == "environment.build.dockerfile_path"


def test_a_misspelt_command_is_validated_as_a_command_job_and_every_typo_reported(write_yaml):
    path = write_yaml("""
        comand: python a.py
        enviroment_variables: {A: "1"}
        limits: {timout: 5}
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    found = {(e.path, e.hint) for e in info.value.errors}
    assert ("comand", "did you mean 'command'?") in found
    assert ("enviroment_variables", "did you mean 'environment_variables'?") in found
    assert ("limits.timout", "did you mean 'timeout'?") in found


def test_loguniform_bounds_written_as_values_get_a_warning_with_the_exponents(write_yaml):
    doc = load(write_yaml("""
        type: sweep
        trial: {command: "python t.py ${{search_space.lr}}"}
        sampling_algorithm: random
        search_space: {lr: {type: loguniform, min_value: 0.001, max_value: 0.1}}
        objective: {goal: minimize, primary_metric: loss}
    """))
    (warning,) = [w for w in doc.warnings if w.path == "search_space.lr"]
    assert "draws from 1.001 to 1.105" in warning.message
    assert warning.hint == "for 0.001 to 0.1, write min_value: -6.908, max_value: -2.303"


def test_a_misspelt_input_type_names_every_input_type_and_nothing_that_follows_from_it(write_yaml):
    path = write_yaml("""
        command: echo ${{inputs.x}}
        inputs:
          x: {type: integr, value: 3}
        limits: {timeout: -5}
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    assert [(e.path, e.message, e.hint) for e in info.value.errors] == [
        ("inputs.x.type", "'integr' is not an input type: string, integer, number, boolean, uri_file, uri_folder, "
                          "mltable, mlflow_model, custom_model, triton_model", "did you mean 'integer'?"),
        ("limits.timeout", "a whole number of seconds, at least 1", ""),
    ]


def test_one_violation_is_said_once(write_yaml):
    path = write_yaml("""
        type: sweep
        trial: {command: "python t.py ${{search_space.e}}"}
        sampling_algorithm: random
        search_space: {e: [1, 2, 3]}
        objective: {goal: minimize, primary_metric: loss}
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    assert [e.path for e in info.value.errors] == ["search_space.e"]
