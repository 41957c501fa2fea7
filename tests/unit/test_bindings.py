"""Bindings: found, checked at validation, rendered quoted for their place in the command, optional groups
dropped. Rendered commands are run by bash: a value must arrive exactly as it is, and never run."""

import os
import subprocess

import pytest

from airflow_mljobs.compute import BUILTIN
from airflow_mljobs.plan import build_plan
from airflow_mljobs.spec import RenderError, SpecError, load, references, render
from airflow_mljobs.spec.bindings import MAX_COMMAND_BYTES, render_only

# (a command with ${{inputs.a}} in one shell context, what it prints for the value v)
CONTEXTS = {
    "unquoted": ("printf '%s\\n' ${{inputs.a}}", lambda v: v + "\n"),
    "word": ("printf '%s\\n' --a=${{inputs.a}}", lambda v: "--a=" + v + "\n"),
    "double": ("printf '%s\\n' \"value=${{inputs.a}}\"", lambda v: "value=" + v + "\n"),
    "single": ("printf '%s\\n' 'value=${{inputs.a}}'", lambda v: "value=" + v + "\n"),
    "ansi-c": ("printf '%s\\n' $'value=${{inputs.a}}'", lambda v: "value=" + v + "\n"),
    "adjacent": ("printf '%s\\n' \"${{inputs.a}}\"'${{inputs.a}}'${{inputs.a}}", lambda v: v * 3 + "\n"),
    "$() in double": ("printf '%s\\n' \"$(printf '%s' ${{inputs.a}})\"", lambda v: v.rstrip("\n") + "\n"),
    "quotes in $() in double": ("printf '%s\\n' \"$(printf '%s' \"'${{inputs.a}}'\")\"",
                                lambda v: ("'" + v + "'").rstrip("\n") + "\n"),
    "backquotes": ("x=`printf '%s' ${{inputs.a}}`; printf '%s\\n' \"$x\"", lambda v: v.rstrip("\n") + "\n"),
    "double in backquotes in double": ("printf '%s\\n' \"`printf '%s' \"${{inputs.a}}\"`\"",
                                       lambda v: v.rstrip("\n") + "\n"),
    "single in backquotes": ("x=`printf '%s' '${{inputs.a}}'`; printf '%s\\n' \"$x\"",
                             lambda v: v.rstrip("\n") + "\n"),
    "${:-} in double": ("printf '%s\\n' \"${MLJOBS_UNSET:-${{inputs.a}}}\"", lambda v: v + "\n"),
    "${:-} unquoted": ("x=${MLJOBS_UNSET:-${{inputs.a}}}; printf '%s\\n' \"$x\"", lambda v: v + "\n"),
    "optional group": ("printf '%s\\n' $[[--a=\"${{inputs.a}}\"]] $[[${{inputs.a}}]]", lambda v: f"--a={v}\n{v}\n"),
    "comment": ("printf '%s\\n' ok # ${{inputs.a}} 'x", lambda v: "ok\n"),
    "here-document": ("cat <<EOF\nvalue=${{inputs.a}}\nEOF", lambda v: "value=" + v + "\n"),
    "quoted here-document": ("cat <<'EOF'\nvalue=${{inputs.a}}\nEOF", lambda v: "value=" + v + "\n"),
    "$() in here-document": ("cat <<EOF\n$(printf '%s' ${{inputs.a}})\nEOF", lambda v: v.rstrip("\n") + "\n"),
    "here-document, tabs": ("cat <<-EOF && echo done\n\tvalue=${{inputs.a}}\n\tEOF", lambda v: f"value={v}\ndone\n"),
}
HOSTILE = ["$(touch pwned)", "`touch pwned`", "x; touch pwned", "a\ntouch pwned", "it's", "'", '"', "\\", "\\'",
           '\\"', "'; touch pwned; '", '"; touch pwned; "', "\\\"$(touch pwned)\\\"", "'\"$(touch pwned)\"'", "}",
           ")", "a}b", "${PATH}", "$'\\x41'", "#x", "\n", "", "hello world", "*", "~", "EOF-less", "$((1+1))",
           "${{inputs.a}}"]


def run_rendered(command: str, folder) -> str:
    """Run a rendered command with bash in an empty `folder`: its output, after checking that nothing ran
    (nothing was written there)."""
    result = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True,
                            env={"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"}, timeout=10)
    assert result.returncode == 0, (command, result.stderr)
    assert not os.listdir(folder), f"the value ran: {command!r}"
    return result.stdout.decode()  # bytes first: text mode would read a value's "\r" as a line end


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


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("context", CONTEXTS)
def test_a_value_arrives_exactly_and_never_runs_in_every_shell_context(tmp_path, context, value):
    command, expected = CONTEXTS[context]
    if "here-document" in context and "EOF" in value:  # its delimiter: refused rather than risk ending it
        with pytest.raises(RenderError, match="would end the here-document"):
            render(command, {"inputs.a": value})
        return
    assert run_rendered(render(command, {"inputs.a": value}), tmp_path) == expected(value)


def test_a_search_space_value_is_quoted_for_its_context_too(tmp_path):
    command = "printf '%s\\n' \"lr=${{search_space.lr}}\" ${{inputs.a}}"
    trial = render_only(command, "search_space.", {"search_space.lr": "$(touch pwned)\""})
    assert "${{inputs.a}}" in trial
    assert run_rendered(render(trial, {"inputs.a": "`touch pwned`"}), tmp_path) == 'lr=$(touch pwned)"\n`touch pwned`\n'


def test_a_value_set_on_the_command_line_never_runs(write_yaml, tmp_path):
    path = write_yaml("""
        command: echo "value=${{inputs.a}}"
        inputs:
          a: hello world
    """)
    plain = build_plan(load(path).model, BUILTIN["local"], name="j", backend="local", root="/w", tracking_env={})
    assert plain.processes[0].command == 'echo "value=hello world"'  # no stray quotes
    hostile = load(path, ["inputs.a=$(touch pwned)"]).model
    plan = build_plan(hostile, BUILTIN["local"], name="j", backend="local", root="/w", tracking_env={})
    (tmp_path / "run").mkdir()
    assert run_rendered(plan.processes[0].command, tmp_path / "run") == "value=$(touch pwned)\n"


def test_a_here_document_refuses_a_value_that_would_end_it():
    with pytest.raises(RenderError, match="would end the here-document"):
        render("cat <<END\n${{inputs.a}}\nEND", {"inputs.a": "x\nEND\ntouch pwned"})


def test_arithmetic_takes_numbers_only(tmp_path):
    assert run_rendered(render("echo $(( ${{inputs.n}} * 2 ))", {"inputs.n": "21"}), tmp_path) == "42\n"
    with pytest.raises(RenderError, match="not a number"):
        render("echo $(( ${{inputs.n}} * 2 ))", {"inputs.n": "a[$(touch pwned)]"})


def test_a_rendered_command_over_the_argument_limit_is_refused():
    assert render("echo ${{inputs.a}}", {"inputs.a": "x" * 1000}).startswith("echo x")
    with pytest.raises(RenderError, match=f"over the limit of {MAX_COMMAND_BYTES}"):
        render("echo ${{inputs.a}}", {"inputs.a": "x" * MAX_COMMAND_BYTES})


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
