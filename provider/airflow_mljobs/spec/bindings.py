"""`${{inputs.x}}`, `${{outputs.x}}`, `${{search_space.x}}` and optional groups `$[[ ... ]]` in commands.

Validation finds every reference and checks its name; rendering drops an optional group whose input has
no value and substitutes the rest quoted for the place in the shell command where each binding stands
(unquoted, inside '...', "...", $'...', a here-document, backticks), so that a value such as
`x; rm -rf /` or `$(touch pwned)` reaches the program exactly as it is and never as shell syntax.
"""

from __future__ import annotations

import bisect
import re
import shlex
from dataclasses import dataclass
from typing import Mapping

BINDING = re.compile(r"\$\{\{\s*(?P<expr>[^{}]*?)\s*\}\}")
OPTIONAL_GROUP = re.compile(r"\$\[\[(?P<body>.*?)\]\]", re.S)
_EXPR = re.compile(r"^(?P<kind>inputs|outputs|search_space)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
MAX_COMMAND_BYTES = 120 * 1024  # Linux refuses one argument (`bash -c <command>`) over 128 KiB, MAX_ARG_STRLEN;
#                                 the rest is left to a launcher's wrapping (mpirun)


@dataclass(frozen=True)
class Reference:
    text: str  # as written, e.g. "${{ inputs.lr }}"
    expr: str  # "inputs.lr"
    kind: str | None  # inputs, outputs, search_space; None when the expression is not one of ours
    name: str | None
    optional: bool  # inside a $[[ ... ]] group


def references(command: str) -> list[Reference]:
    """Every binding in `command`, in order, marking those inside optional groups."""
    spans = [(m.start(), m.end()) for m in OPTIONAL_GROUP.finditer(command)]  # in order, never overlapping
    starts = [start for start, _ in spans]
    found = []
    for match in BINDING.finditer(command):
        expr = match.group("expr")
        parsed = _EXPR.match(expr)
        group = bisect.bisect_right(starts, match.start()) - 1
        inside = group >= 0 and match.start() < spans[group][1]
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
    """A binding cannot be substituted: it has no value, or its value cannot stand where it is written."""


# -- where each binding stands in the shell command ------------------------------------------------------
_UNQUOTED = {"top", "$(", "`"}  # command text: words, operators, quotes of every kind
_WORD_BREAK = " \t\n;&|()<>"


def contexts(command: str) -> tuple[dict[int, tuple[tuple, ...]], tuple[tuple, ...]]:
    """The shell context of each binding (by its offset), and the contexts left open at the end.

    A context is a stack of frames, innermost last: "top", "$(" and "`" (command text), "'", "$'", '"',
    "${" (inside a parameter expansion: quoted as around it), "#" (a comment), "((" (arithmetic) and
    ("<<", delimiter, quoted) for a here-document's body. It reads bash's grammar as far as quoting goes,
    which is what decides how a value must be written to arrive as itself."""
    bindings = {m.start(): m.end() for m in BINDING.finditer(command)}
    found: dict[int, tuple] = {}
    frames: list[list] = [["top"]]
    pending: list[tuple] = []  # here-documents announced on the current line: (delimiter, quoted, strip_tabs)
    i, n = 0, len(command)
    while i < n:
        if i in bindings:
            found[i] = tuple(tuple(f) for f in frames)
            i = bindings[i]
            continue
        frame, c = frames[-1], command[i]
        kind = frame[0]
        if kind == "'":
            if c == "'":
                frames.pop()
        elif kind == "$'":
            if c == "\\":
                i += 1
            elif c == "'":
                frames.pop()
        elif kind == "#":
            if c == "\n":
                frames.pop()
                continue
        elif kind == "<<" and (i == 0 or command[i - 1] == "\n") and _ends_here_document(command, i, frame):
            frames.pop()
            i = _line_end(command, i)
            continue
        elif kind == "<<" and frame[2]:
            pass  # a quoted here-document: its body is text
        else:
            i = _step(command, i, frames, pending)
            continue
        i += 1
    return found, tuple(tuple(f) for f in frames)


def _step(command: str, i: int, frames: list[list], pending: list[tuple]) -> int:
    """One character (or a token such as `$(`) of command text, a "..." string, `${...}`, `$((...))` or an
    unquoted here-document's body; returns where to go on."""
    frame, c, two = frames[-1], command[i], command[i:i + 2]
    kind = frame[0]
    code = kind in _UNQUOTED or (kind == "${" and _outer(frames) in _UNQUOTED)
    if c == "\\":
        return i + 2
    if command.startswith("$((", i) or (kind in _UNQUOTED and two == "(("):
        frames.append(["((", 0])
        return i + (3 if c == "$" else 2)
    if two == "$(":
        frames.append(["$(", 0])
        return i + 2
    if two == "${":
        frames.append(["${"])
        return i + 2
    if c == "`":
        frames.pop() if kind == "`" else frames.append(["`"])
    elif c == '"' and kind != "<<":
        frames.pop() if kind == '"' else frames.append(['"'])
    elif kind == "${" and c == "}":
        frames.pop()
    elif kind in ("$(", "((") and c == "(":
        frame[1] += 1
    elif kind == "$(" and c == ")":
        frames.pop() if frame[1] == 0 else frame.__setitem__(1, frame[1] - 1)
    elif kind == "((" and c == ")":
        if frame[1] == 0 and two == "))":
            frames.pop()
            return i + 2
        frame[1] -= 1
    elif code and c == "'":
        frames.append(["'"])
    elif code and two in ("$'", '$"'):
        frames.append(["$'"] if two == "$'" else ['"'])
        return i + 2
    elif kind in _UNQUOTED and c == "#" and (i == 0 or command[i - 1] in _WORD_BREAK):
        frames.append(["#"])
    elif kind in _UNQUOTED and two == "<<" and not command.startswith("<<<", i):
        return _here_document(command, i + 2, pending)
    elif kind in _UNQUOTED and command.startswith("<<<", i):
        return i + 3
    elif kind in _UNQUOTED and c == "\n" and pending:
        delimiter, quoted, strip = pending.pop(0)
        frames.append(["<<", delimiter, quoted, strip])
    return i + 1


def _outer(frames: list[list]) -> str:
    """The quoting around a `${...}` expansion (it has none of its own)."""
    return next(f[0] for f in reversed(frames) if f[0] != "${")


def _here_document(command: str, i: int, pending: list[tuple]) -> int:
    """Read the delimiter after `<<` (or `<<-`): the body starts at the end of the line."""
    strip = command.startswith("-", i)
    i += strip
    while i < len(command) and command[i] in " \t":
        i += 1
    end = i
    while end < len(command) and command[end] not in _WORD_BREAK:
        end += 1
    word = command[i:end]
    if word:
        quoted = any(q in word for q in "'\"\\")
        pending.append((re.sub(r"[\\'\"]", "", word), quoted, strip))
    return end


def _ends_here_document(command: str, i: int, frame: list) -> bool:
    line = command[i:_line_end(command, i)]
    return (line.lstrip("\t") if frame[3] else line) == frame[1]


def _line_end(command: str, i: int) -> int:
    end = command.find("\n", i)
    return len(command) if end < 0 else end


# -- quoting a value for its place ---------------------------------------------------------------------------
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+)$")


def quote(value: str, frames: tuple[tuple, ...]) -> str:
    """`value` written so that the shell, reading it where `frames` say, sees exactly `value` and runs none
    of it."""
    kinds = [f[0] for f in frames]
    inner = next(f for f in reversed(frames) if f[0] != "${")
    if inner[0] in _UNQUOTED:
        text = shlex.quote(value)
    elif inner[0] == "'":
        text = value.replace("'", "'\\''")  # close, an escaped quote, reopen
    elif inner[0] == "$'":
        text = value.replace("\\", "\\\\").replace("'", "\\'")
    elif inner[0] == '"':
        text = re.sub(r'([\\$`"])', r"\\\1", value)
        if kinds[-1] == "${":  # in "${x:-...}" bash still pairs ' and }: a nested "..." keeps them text
            text = f'"{text}"'
    elif inner[0] == "#":
        text = shlex.quote(value).replace("\n", " ")  # a comment ends at a line's end; the rest would run
    elif inner[0] == "((":
        if not _NUMBER.match(value):
            raise RenderError(f"{value[:40]!r} is not a number, and the binding stands in $((...)) arithmetic, "
                              f"where the shell would evaluate it")
        text = value
    else:  # a here-document's body
        text = value if inner[2] else re.sub(r"([\\$`])", r"\\\1", value)
    for _ in range(kinds.count("`")):  # backquotes read their text once more, taking one level of \ \` \$
        text = re.sub(r"([\\$`])", r"\\\1", text)
    for frame in frames:  # bash reads a here-document's lines before anything in them, quotes included
        if frame[0] == "<<" and frame[1] in text:
            raise RenderError(f"the value {value[:40]!r} holds '{frame[1]}', which would end the here-document "
                              f"it stands in")
    return text


def render_only(command: str, prefix: str, values: Mapping[str, str]) -> str:
    """Substitute the bindings under `prefix` (e.g. "search_space.") and leave every other one as written."""
    places, _ = contexts(command)

    def binding(match: re.Match) -> str:
        expr = match.group("expr")
        if not (expr.startswith(prefix) and expr in values):
            return match.group(0)
        return quote(str(values[expr]), places[match.start()])

    return _checked(BINDING.sub(binding, command))


def render(command: str, values: Mapping[str, str | None]) -> str:
    """Substitute bindings; `values` maps "inputs.x" (etc.) to text, or None for an input without value.

    An optional group is kept (without its `$[[ ]]`) only when every binding inside it has a value. Each
    value is quoted for the context it stands in once the groups are resolved."""

    def group(match: re.Match) -> str:
        body = match.group("body")
        inner = [m.group("expr") for m in BINDING.finditer(body)]
        return body if all(values.get(expr) is not None for expr in inner) else ""

    command = OPTIONAL_GROUP.sub(group, command)
    places, _ = contexts(command)

    def binding(match: re.Match) -> str:
        expr = match.group("expr")
        if expr not in values:
            raise RenderError(f"unknown binding ${{{{{expr}}}}}")
        value = values[expr]
        if value is None:
            raise RenderError(f"${{{{{expr}}}}} has no value; give it one or put it inside $[[ ... ]]")
        return quote(str(value), places[match.start()])

    return _checked(BINDING.sub(binding, command))


def _checked(command: str) -> str:
    size = len(command.encode("utf-8", "surrogatepass"))
    if size > MAX_COMMAND_BYTES:
        raise RenderError(f"the command is {size} bytes once its bindings are substituted, over the limit of "
                          f"{MAX_COMMAND_BYTES} (Linux runs no argument over 128 KiB); pass large values in "
                          f"files (a uri_file input) rather than on the command line")
    return command
