"""The body shared by `job validate`, `compute validate` and `environment validate`."""

from __future__ import annotations

from ..spec import SpecError, load
from ._options import emit, fail_spec, print_problems


def validate_file(path: str, overrides, fmt: str, expect: set[str], check=None) -> None:
    """`check(document)` adds what loading cannot know (a job's paths and compute on this machine)."""
    try:
        document = load(path, list(overrides), expect=expect)
        if check is not None:
            check(document)
    except SpecError as error:
        fail_spec(error)
        return
    print_problems(document.warnings)
    emit(document.data, fmt)
