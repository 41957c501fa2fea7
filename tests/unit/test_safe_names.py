"""The one way a name becomes a path: a single folder or file name, checked or made safe."""

import os
import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_mljobs.downloads import shown, unsafe_component, unsafe_path
from airflow_mljobs.naming import check_segment, path_segment
from airflow_mljobs.spec import NotRunnable

ODD = ["..", ".", "../../x", "/etc/passwd", "%2e%2e", "%2E%2e/x", "%252e%252e", "a/b", "a\\b", "a\nb", "a\x00b",
       "", " ", " ..", "~", "file:///etc", "x" * 300, "é/../..", "a%2fb", "..."]


@pytest.mark.parametrize("text", ODD + ["iris", "iris.v2", "Default", "my experiment"])
def test_path_segment_is_one_plain_name(text):
    segment = path_segment(text)
    assert segment == path_segment(text)  # stable
    assert segment not in (".", "..") and "/" not in segment and "\\" not in segment and "%" not in segment
    assert segment.isprintable() and not segment.startswith(".") and 0 < len(segment) <= 100
    assert posixpath.normpath(f"root/{segment}") == f"root/{segment}"


@given(st.text(max_size=300))
def test_path_segment_of_any_text_stays_in_its_folder(text):
    segment = path_segment(text)
    assert os.path.normpath(os.path.join("/root", segment)) == f"/root/{segment}"
    assert unsafe_component(segment) is None


def test_plain_names_keep_their_folder_and_odd_ones_differ():
    assert path_segment("iris") == "iris" and path_segment("iris.v2") == "iris.v2"
    assert path_segment("../../x") != path_segment("../x") != path_segment("x")
    assert path_segment("../../x").startswith("x-")


@pytest.mark.parametrize("name", ODD)
def test_check_segment_refuses_what_is_not_a_plain_name(name):
    with pytest.raises(NotRunnable, match="compute name"):
        check_segment(name, "compute name")


def test_check_segment_keeps_a_plain_name():
    assert check_segment("cpu-cluster", "compute name") == "cpu-cluster"


@pytest.mark.parametrize("name", ["..", ".", "%2e%2e", "%2E%2E", "%252e%252e", "a/b", "a%2fb", "a\\b", "a%5cb",
                                  "a\nb", "a%0ab", "a\x00b", "tab\there", ""])
def test_unsafe_components(name):
    assert unsafe_component(name) is not None


@pytest.mark.parametrize("name", ["ok.txt", "100%.txt", "a%zz", "...", "é", "a b", "#1"])
def test_safe_components(name):
    assert unsafe_component(name) is None


def test_unsafe_paths_and_how_they_are_shown():
    assert unsafe_path("outputs/model.pkl") is None
    assert unsafe_path("/etc/passwd") == "an absolute path"
    assert unsafe_path("outputs/../../x") is not None and unsafe_path("outputs//x") is not None
    assert shown("new\nline\x00.txt") == "new\\nline\\x00.txt"
