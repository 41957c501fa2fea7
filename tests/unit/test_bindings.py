"""Bindings: found, checked at validation, rendered shell-quoted, optional groups dropped."""

import subprocess

import pytest

from airflow_mljobs.spec import RenderError, SpecError, load, references, render


def test_references_with_inner_spaces_and_groups():
    refs = references("python t.py ${{ inputs.a }} $[[--b ${{inputs.b}}]] ${{outputs.o}} ${{search_space.lr}}")
    assert [(r.kind, r.name, r.optional) for r in refs] == [
        ("inputs", "a", False), ("inputs", "b", True), ("outputs", "o", False), ("search_space", "lr", False),
    ]


def test_render_drops_optional_group_without_value():
    command = "python t.py --a ${{inputs.a}} $[[--b ${{inputs.b}}]] $[[--c ${{inputs.c}}]]"
    text = render(command, {"inputs.a": "1", "inputs.b": None, "inputs.c": "3"})
    assert text.split() == ["python", "t.py", "--a", "1", "--c", "3"]


def test_render_quotes_values_so_they_stay_one_argument():
    hostile = "x; rm -rf / $(echo pwned) `id` 'q' \"dq\""
    text = render("printf '%s\\n' ${{inputs.a}} ${{inputs.b}}", {"inputs.a": hostile, "inputs.b": "plain"})
    out = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [hostile, "plain"]


def test_render_refuses_a_missing_value_outside_a_group():
    with pytest.raises(RenderError, match="has no value"):
        render("echo ${{inputs.a}}", {"inputs.a": None})


def test_unknown_binding_names_are_validation_errors(write_yaml):
    path = write_yaml("""
        type: sweep
        trial:
          command: >-
            python t.py --x ${{inputs.x}}
            --lr ${{search_space.learning_rat}}
            --o ${{outputs.model}} --z ${{jobs.a.outputs.b}}
        inputs: {x: 1}
        sampling_algorithm: random
        search_space: {learning_rate: {type: uniform, min_value: 0, max_value: 1}}
        objective: {goal: minimize, primary_metric: loss}
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    messages = {(e.mark.line, e.message) for e in info.value.errors}
    assert messages == {
        (5, "${{search_space.learning_rat}} names no declared hyperparameter 'learning_rat'"),
        (6, "${{outputs.model}} names no declared output 'model'"),
        (6, "unknown binding ${{jobs.a.outputs.b}}"),
    }


def test_optional_input_needs_a_group(write_yaml):
    path = write_yaml("""
        command: python t.py ${{inputs.depth}}
        inputs:
          depth: {type: integer, optional: true}
    """)
    with pytest.raises(SpecError, match="has no value outside an optional group"):
        load(path)


def test_undeclared_name_inside_a_group_is_a_warning(write_yaml):
    doc = load(write_yaml("command: python t.py $[[--d ${{inputs.depth}}]]\n"))
    assert any("optional group is dropped" in w.message for w in doc.warnings)


def test_a_binding_or_a_group_that_never_closes_is_an_error_where_it_begins(write_yaml):
    path = write_yaml("""
        command: >-
          python t.py --d ${{inputs.data
          $[[--e ${{inputs.data}}
        inputs: {data: 3}
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    messages = {(e.mark.line, e.mark.column, e.message) for e in info.value.errors}
    assert messages == {(2, 19, "'${{inputs.data' is not closed"), (3, 3, "'$[[--e' is not closed")}
