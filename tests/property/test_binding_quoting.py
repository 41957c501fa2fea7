"""Property-based: whatever a value holds, and wherever its binding stands in the command, bash receives exactly
the value and runs none of it (checked by running the rendered command in an empty folder)."""

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_mljobs.spec import RenderError, render
from tests.unit.test_bindings import CONTEXTS, run_rendered

SHELL_SYNTAX = ["$(touch pwned)", "`touch pwned`", ";touch pwned;", "&&", "|", "'", '"', "\\", "\n", "$", "`", "(",
                ")", "{", "}", "#", "*", "~", "!", " ", "\t", "${PWD}", "$'", "<<", "EOF", "${{inputs.a}}", "]]"]
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)
values = st.lists(st.one_of(st.sampled_from(SHELL_SYNTAX), text), max_size=8).map("".join)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CONTEXTS)), values)
def test_a_value_reaches_the_command_exactly_and_never_runs(context, value):
    command, expected = CONTEXTS[context]
    if "here-document" in context and "EOF" in value:
        with pytest.raises(RenderError):
            render(command, {"inputs.a": value})
        return
    with tempfile.TemporaryDirectory() as folder:
        assert run_rendered(render(command, {"inputs.a": value}), folder) == expected(value)
