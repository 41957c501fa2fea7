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


def test_duplicate_key_is_an_error_naming_both_lines():
    with pytest.raises(SpecError) as info:
        load_text("command: echo\ncommand: echo again\n", "dup.yml")
    (problem,) = info.value.errors
    assert (problem.mark.line, problem.path) == (2, "command")
    assert "line 1" in problem.hint


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
