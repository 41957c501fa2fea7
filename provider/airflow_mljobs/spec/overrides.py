"""`--set` overrides: `inputs.lr=0.1`, `trial.resources.docker_args[0]=--ipc=host`,
`search_space.kernel.values='["rbf","linear"]'`. Applied to the document as written, before validation,
as `az ml job create --set` does.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .errors import Mark, Problem, Severity, SpecError, did_you_mean, yaml_path

DECLARED = ("inputs", "search_space")  # mappings whose keys a job declares: a new one is likely a typo
from .source import Source

_SEGMENT = re.compile(r"""([^.\[\]]+)|\[(\d+)\]|\["([^"]*)"\]|\['([^']*)'\]""")


def parse_override(text: str) -> tuple[tuple, Any]:
    """Split `a.b[0]=value` into a path tuple and a value (JSON when it parses as JSON, else the string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
    return parse_key(key.strip()), parse_value(raw)


def parse_key(key: str) -> tuple:
    parts: list = []
    pos = 0
    while pos < len(key):
        if parts and key[pos] == ".":
            pos += 1
        match = _SEGMENT.match(key, pos)
        if not match or match.end() == pos:
            raise ValueError(f"--set key {key!r} is malformed at character {pos + 1}")
        name, index, dq, sq = match.groups()
        parts.append(int(index) if index is not None else next(p for p in (name, dq, sq) if p is not None))
        pos = match.end()
    return tuple(parts)


def parse_value(raw: str) -> Any:
    text = raw.strip()
    try:
        return json.loads(text)
    except ValueError:
        return raw


def apply_overrides(source: Source, overrides: list[str] | dict | None) -> list[Problem]:
    """Write each override into `source.data`; returns warnings, raises SpecError on a path that cannot hold it.

    A key under a plain value replaces that value with a mapping (so the seed's `--set compute.target=local`
    works on a file that says `compute: azureml:cpu-cluster`); the replaced value is named in a warning.
    """
    if not overrides:
        return []
    pairs = _as_pairs(overrides)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    data = source.data if isinstance(source.data, dict) else {}
    for text, path, value in pairs:
        mark = Mark(f"--set {text}", 1, 1)
        declared = data.get(path[0]) if len(path) > 1 and path[0] in DECLARED else None
        if isinstance(declared, dict) and path[1] not in declared:
            names = ", ".join(map(str, declared)) or "none"
            warnings.append(Problem(mark, yaml_path(path[:2]), f"adds '{path[1]}', which the YAML does not declare "
                                    f"(it declares: {names})", did_you_mean(str(path[1]), map(str, declared)),
                                    severity=Severity.WARNING))
        node = data
        for depth, part in enumerate(path[:-1]):
            nxt = path[depth + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    problems.append(Problem(mark, yaml_path(path[: depth + 1]), f"no list item [{part}] to set"))
                    break
                child = node[part]
            else:
                if not isinstance(node, dict):
                    problems.append(Problem(mark, yaml_path(path[: depth + 1]), "cannot set a key inside a list"))
                    break
                child = node.get(part)
            if not isinstance(child, (dict, list)) or (isinstance(nxt, str) and not isinstance(child, dict)):
                if child is not None:
                    warnings.append(
                        Problem(mark, yaml_path(path[: depth + 1]), f"replaces the value {child!r} with a mapping",
                                severity=Severity.WARNING)
                    )
                child = {}
                node[part] = child
            node = child
        else:
            last = path[-1]
            if isinstance(last, int):
                if not isinstance(node, list) or last > len(node):
                    problems.append(Problem(mark, yaml_path(path), f"no list item [{last}] to set"))
                    continue
                if last == len(node):
                    node.append(copy.deepcopy(value))
                else:
                    node[last] = copy.deepcopy(value)
            elif isinstance(node, dict):
                node[last] = copy.deepcopy(value)
            else:
                problems.append(Problem(mark, yaml_path(path), "cannot set a key inside a list"))
                continue
            source.overridden[path] = text
    source.data = data
    if problems:
        raise SpecError(problems + warnings)
    return warnings


def _as_pairs(overrides) -> list[tuple[str, tuple, Any]]:
    pairs = []
    problems = []
    items = overrides.items() if isinstance(overrides, dict) else [(o, None) for o in overrides]
    for key, value in items:
        try:
            if isinstance(overrides, dict):
                pairs.append((f"{key}={value!r}", parse_key(str(key)), value))
            else:
                path, parsed = parse_override(key)
                pairs.append((key, path, parsed))
        except ValueError as exc:
            problems.append(Problem(Mark(f"--set {key}", 1, 1), "", str(exc)))
    if problems:
        raise SpecError(problems)
    return pairs
