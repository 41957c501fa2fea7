"""What validation passes must start: counts, variable names and sizes the kernel would refuse are located
errors, with the limit in the message, never a traceback or a minute-long plan."""

import time

import pytest

from airflow_mljobs.compute import BUILTIN
from airflow_mljobs.plan import build_plan
from airflow_mljobs.spec import SpecError, load
from airflow_mljobs.spec.bindings import MAX_COMMAND_BYTES
from airflow_mljobs.spec.checks import MAX_RANKS


def _errors(path, overrides=()):
    with pytest.raises(SpecError) as info:
        load(path, list(overrides))
    return [(e.mark.line, e.path, e.message, e.hint) for e in info.value.errors]


@pytest.mark.parametrize("count, shown", [("1.0e+30", "1e+30"), ("100000", "100000"), ("1001", "1001")])
def test_an_instance_count_over_the_maximum_is_located(write_yaml, count, shown):
    path = write_yaml(f"""
        command: echo hi
        resources:
          instance_count: {count}
    """)
    ((line, where, message, hint),) = _errors(path)
    assert (line, where, message) == (3, "resources.instance_count", f"{shown} is greater than the maximum of 1000")
    assert "at most 1000 instances" in hint


def test_an_instance_count_from_set_too(write_yaml):
    path = write_yaml("command: echo hi\n")
    with pytest.raises(SpecError) as info:
        load(path, ["resources.instance_count=1e30"])
    (error,) = info.value.errors
    assert str(error).startswith("--set resources.instance_count=1e30: error: resources.instance_count: 1e+30 is "
                                 "greater than the maximum of 1000")


def test_a_whole_float_count_is_an_integer(write_yaml):
    job = load(write_yaml("command: echo hi\nresources: {instance_count: 2.0}\n")).model
    assert job.trial.resources.instance_count == 2 and isinstance(job.trial.resources.instance_count, int)
    plan = build_plan(job, BUILTIN["local"], name="j", backend="local", root="/w", tracking_env={})
    assert len(plan.processes) == 2


def test_a_thousand_instances_plan_quickly(write_yaml):
    job = load(write_yaml("command: echo hi\nresources: {instance_count: 1000}\n")).model
    started = time.monotonic()
    plan = build_plan(job, BUILTIN["local"], name="j", backend="local", root="/w", tracking_env={})
    assert len(plan.processes) == 1000 and time.monotonic() - started < 5


@pytest.mark.parametrize("distribution, resources, at, message", [
    ("{type: pytorch, process_count_per_instance: 20}", "{instance_count: 100}", "distribution.process_count_per_instance",
     "100 instances of 20 processes make 2000 ranks, over the limit of 1000"),
    ("{type: mpi, process_count_per_instance: 1000}", "{instance_count: 2}", "distribution.process_count_per_instance",
     "2 instances of 1000 processes make 2000 ranks, over the limit of 1000"),
    ("{type: tensorflow, worker_count: 1000, parameter_server_count: 1}", "{instance_count: 1}",
     "distribution.worker_count", "1000 workers and 1 parameter servers make 1001 ranks, over the limit of 1000"),
])
def test_ranks_in_all_are_bounded(write_yaml, distribution, resources, at, message):
    path = write_yaml(f"""
        command: echo hi
        distribution: {distribution}
        resources: {resources}
    """)
    assert [(line, where, text) for line, where, text, _ in _errors(path)] == [(2, at, message)]
    assert MAX_RANKS == 1000


def test_process_count_per_instance_has_the_same_maximum(write_yaml):
    path = write_yaml("command: echo hi\ndistribution: {type: pytorch, process_count_per_instance: 5000}\n")
    assert [(w, m) for _, w, m, _ in _errors(path)] == [
        ("distribution.process_count_per_instance", "5000 is greater than the maximum of 1000")]


def test_environment_variable_names_are_checked_where_written(write_yaml):
    path = write_yaml("""
        command: echo hi
        environment_variables:
          GOOD_1: x
          "A=B": y
          "": z
          9LIVES: w
    """)
    found = [(line, where, message) for line, where, message, _ in _errors(path)]
    rule = "is not a variable name: it must start with a letter or _ and hold only letters, digits and _"
    assert found == [(4, "environment_variables.A=B", f"the name 'A=B' {rule}"),
                     (5, "environment_variables.", f"the name '' {rule}"),
                     (6, "environment_variables.9LIVES", f"the name '9LIVES' {rule}")]


def test_a_command_over_the_argument_limit_is_located(write_yaml):
    path = write_yaml("inputs: {a: 1}\ncommand: echo " + "x" * MAX_COMMAND_BYTES + "\n")
    ((line, where, message, hint),) = _errors(path)
    assert (line, where) == (2, "command")
    assert message == f"the command is {MAX_COMMAND_BYTES + 5} bytes, over the limit of {MAX_COMMAND_BYTES}"
    assert "128 KiB" in hint


def test_two_hundred_thousand_bindings_are_refused_quickly(write_yaml):
    path = write_yaml("inputs: {a: 1}\ncommand: echo " + "$[[${{inputs.a}}]]" * 200_000 + "\n")
    started = time.monotonic()
    ((_, where, message, _),) = _errors(path)
    assert where == "command" and "over the limit" in message
    assert time.monotonic() - started < 5


def test_a_command_just_under_the_limit_with_many_bindings_validates_quickly(write_yaml):
    count = MAX_COMMAND_BYTES // len("$[[${{inputs.a}}]]") - 1
    path = write_yaml("inputs: {a: 1}\ncommand: echo " + "$[[${{inputs.a}}]]" * count + "\n")
    started = time.monotonic()
    load(path)
    assert time.monotonic() - started < 5


def test_oversized_variables_and_literal_inputs_are_located(write_yaml):
    big = "x" * (MAX_COMMAND_BYTES + 1)
    path = write_yaml(f"""
        command: echo ${{{{inputs.small}}}}
        inputs:
          small: 1
          large: {big}
        environment_variables:
          OK: fine
          HUGE: {big}
    """)
    found = [(line, where) for line, where, message, _ in _errors(path) if "environment variable" in message]
    assert found == [(4, "inputs.large"), (7, "environment_variables.HUGE")]


def test_a_command_whose_quotes_do_not_close_is_warned_about(write_yaml):
    doc = load(write_yaml("""command: echo "value=${{inputs.a}}\ninputs: {a: 1}\n"""))
    (warning,) = doc.warnings
    assert (warning.mark.line, warning.path, warning.message) == (1, "command", 'the command ends inside a "..." string')
