"""`${{inputs.x}}`, `${{outputs.x}}`, `${{search_space.x}}` and optional groups `$[[ ... ]]` in commands.

Validation finds every reference and checks its name; rendering drops an optional group whose input has
no value and substitutes the rest shell-quoted, so that a value such as `x; rm -rf /` reaches the program
as one argument and never as shell syntax.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Mapping

BINDING = re.compile(r"\$\{\{\s*(?P<expr>[^{}]*?)\s*\}\}")
OPTIONAL_GROUP = re.compile(r"\$\[\[(?P<body>.*?)\]\]", re.S)
_EXPR = re.compile(r"^(?P<kind>inputs|outputs|search_space)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class Reference:
    text: str  # as written, e.g. "${{ inputs.lr }}"
    expr: str  # "inputs.lr"
    kind: str | None  # inputs, outputs, search_space; None when the expression is not one of ours
    name: str | None
    optional: bool  # inside a $[[ ... ]] group


def references(command: str) -> list[Reference]:
    """Every binding in `command`, in order, marking those inside optional groups."""
    spans = [(m.start(), m.end()) for m in OPTIONAL_GROUP.finditer(command)]
    found = []
    for match in BINDING.finditer(command):
        expr = match.group("expr")
        parsed = _EXPR.match(expr)
        inside = any(start <= match.start() < end for start, end in spans)
        found.append(
            Reference(
                match.group(0),
                expr,
                parsed.group("kind") if parsed else None,
                parsed.group("name") if parsed else None,
                inside,
            )
        )
    return found


def unclosed(command: str) -> list[str]:
    """The beginnings of `${{` bindings and `$[[` groups that never close (a typo the shell would run as is)."""
    bound = {m.start() for m in BINDING.finditer(command)}
    grouped = {m.start() for m in OPTIONAL_GROUP.finditer(command)}
    starts = [i for i in _all(command, "${{") if i not in bound] + [i for i in _all(command, "$[[") if i not in grouped]
    return [command[i:].split(None, 1)[0][:40] for i in starts]  # up to the first blank, as it is written


def _all(text: str, needle: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(needle), text)]


class RenderError(ValueError):
    """A reference outside an optional group has no value."""


def render_only(command: str, prefix: str, values: Mapping[str, str]) -> str:
    """Substitute the bindings under `prefix` (e.g. "search_space.") and leave every other one as written."""

    def binding(match: re.Match) -> str:
        expr = match.group("expr")
        return shlex.quote(str(values[expr])) if expr.startswith(prefix) and expr in values else match.group(0)

    return BINDING.sub(binding, command)


def render(command: str, values: Mapping[str, str | None]) -> str:
    """Substitute bindings; `values` maps "inputs.x" (etc.) to text, or None for an input without value.

    An optional group is kept (without its `$[[ ]]`) only when every binding inside it has a value.
    """

    def group(match: re.Match) -> str:
        body = match.group("body")
        inner = [m.group("expr") for m in BINDING.finditer(body)]
        return body if all(values.get(expr) is not None for expr in inner) else ""

    def binding(match: re.Match) -> str:
        expr = match.group("expr")
        if expr not in values:
            raise RenderError(f"unknown binding ${{{{{expr}}}}}")
        value = values[expr]
        if value is None:
            raise RenderError(f"${{{{{expr}}}}} has no value; give it one or put it inside $[[ ... ]]")
        return shlex.quote(str(value))

    return BINDING.sub(binding, OPTIONAL_GROUP.sub(group, command))
