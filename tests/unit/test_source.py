import pytest

from airflow_mljobs.spec import SpecError, load, load_text
from airflow_mljobs.spec.source import parse_source


def test_marks_point_at_lines_and_columns():
    source = parse_source("a: 1\nb:\n  c: [x, y]\n", "f.yml")
    assert source.mark(("b", "c", 1)) == source.mark(("b", "c", 1))
    assert (source.mark(("a",)).line, source.mark(("a",)).column) == (1, 4)
    assert (source.mark(("b", "c", 1)).line, source.mark(("b", "c", 1)).column) == (3, 10)
    assert source.mark(("b", "c"), key=True).column == 3


def test_missing_path_falls_back_to_deepest_written_node():
    source = parse_source("a:\n  b: 1\n", "f.yml")
    assert source.mark(("a", "nothing", "here")).line == 1


def test_duplicate_key_is_a_warning_naming_both_lines_and_the_last_wins():
    doc = load_text("command: echo\ncommand: echo again\n", "dup.yml")
    (problem,) = doc.warnings
    assert (problem.mark.line, problem.path, problem.severity.value) == (2, "command", "warning")
    assert "line 1" in problem.hint
    assert doc.model.trial.command == "echo again"


def test_yaml_syntax_error_is_located():
    with pytest.raises(SpecError) as info:
        load_text("command: echo\ninputs: [a, b\n", "broken.yml")
    (problem,) = info.value.errors
    assert problem.mark.source == "broken.yml"
    assert problem.mark.line >= 2
    assert "YAML syntax error" in problem.message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n"])
def test_empty_and_non_mapping_documents_are_errors(text):
    with pytest.raises(SpecError) as info:
        load_text(text, "odd.yml")
    assert info.value.errors[0].mark.source == "odd.yml"


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load(tmp_path / "nope.yml")


def test_dates_stay_strings():
    doc = load_text("command: echo\ntags:\n  day: 2021-05-25\n", "d.yml")
    assert doc.data["tags"]["day"] == "2021-05-25"


def test_alias_bombs_are_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]")
    with pytest.raises(SpecError, match="more than"):
        load_text("\n".join(lines) + "\ncommand: echo\n", "bomb.yml")


@pytest.mark.parametrize("text, line, column, says", [
    ("command: echo\nresources:\n\tshm_size: 2g\n", 3, 1, "found character '\\t' that cannot start any token"),
    ("command: *missing\n", 1, 10, "found undefined alias 'missing'"),
    ("command: [echo, hi\nname: x\n", 2, 5, "expected ',' or ']'"),
])
def test_syntax_errors_say_what_the_pure_parser_says(text, line, column, says):
    """libyaml reads valid files; a file it rejects is read again for the clearer message of PyYAML's own parser."""
    with pytest.raises(SpecError) as info:
        load_text(text, "broken.yml")
    (problem,) = info.value.errors
    assert (problem.mark.line, problem.mark.column) == (line, column)
    assert says in problem.message


def test_a_control_character_is_located_by_character_not_byte():
    with pytest.raises(SpecError) as info:
        load_text("description: été\ncommand: \"a\x07b\"\n", "ctrl.yml")
    (problem,) = info.value.errors
    assert (problem.mark.line, problem.mark.column) == (2, 12)
    assert problem.message.endswith("does not allow: U+0007")


def test_marks_count_characters_after_non_ascii_text():
    source = parse_source("description: héllo wörld ✓\ncommand: echo\ninputs:\n  x: 1\n", "u.yml")
    assert (source.mark(("command",)).line, source.mark(("command",)).column) == (2, 10)
    assert (source.mark(("inputs", "x")).line, source.mark(("inputs", "x")).column) == (4, 6)
