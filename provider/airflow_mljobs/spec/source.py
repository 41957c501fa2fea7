"""Read YAML keeping the place of every node, so that any later finding can point at a line.

PyYAML composes the document into nodes that carry marks; we build plain Python data from them and keep a
table from YAML path to mark. Normalisation moves values around (a 2021 `compute.instance_count` becomes
`resources.instance_count`), so the table also remembers where each moved path came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Mark, Problem, Severity, SpecError, yaml_path

Path_ = tuple  # a YAML path: keys (str) and list indexes (int)


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamp magic: job YAML means strings where a date-like value appears."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same with libyaml's parser (when PyYAML has it), the faster of the two; its marks count characters
    as the pure parser's do."""

    yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


@dataclass
class Source:
    """A loaded YAML document: its data, the text it came from, and where each path sits in that text."""

    name: str
    text: str
    data: Any
    spans: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> (start, end) offsets
    key_spans: dict[Path_, int] = field(default_factory=dict)  # path -> offset of its key
    moves: dict[Path_, Path_] = field(default_factory=dict)  # normalised path -> path as written
    overridden: dict[Path_, str] = field(default_factory=dict)  # path -> the --set argument that wrote it
    warnings: list[Problem] = field(default_factory=list)  # what reading found and carried on from
    nodes: int = 0  # built so far, a value that a duplicate key replaced included

    # -- locating -------------------------------------------------------------------------------------
    def written_path(self, path: Path_) -> Path_:
        """The path as the user wrote it, undoing normalisation moves (longest moved prefix wins)."""
        path = tuple(path)
        for i in range(len(path), 0, -1):
            if path[:i] in self.moves:
                return self.moves[path[:i]] + path[i:]
        return path

    def mark(self, path: Path_, *, key: bool = False, needle: str | None = None) -> Mark:
        """Mark of the deepest written node on `path`; `key` points at the key, `needle` at a text inside."""
        path = self.written_path(path)
        for i in range(len(path), -1, -1):
            prefix = path[:i]
            if prefix in self.overridden:
                return Mark(f"--set {self.overridden[prefix]}", 1, 1)
            if prefix in self.spans:
                start, end = self.spans[prefix]
                if (key or i < len(path)) and prefix in self.key_spans:
                    start = self.key_spans[prefix]  # a key, or the key owning a missing child
                elif needle and i == len(path):
                    found = self.text.find(needle, start, max(end, start + 1))
                    start = found if found >= 0 else start
                return self._mark_at(start)
        return Mark(self.name, 1, 1)

    def _mark_at(self, offset: int) -> Mark:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return Mark(self.name, line, column)

    def problem(self, path: Path_, message: str, hint: str = "", *, severity=None, key=False, needle=None):
        from .errors import Severity

        return Problem(
            self.mark(path, key=key, needle=needle),
            yaml_path(path),
            message,
            hint,
            severity or Severity.ERROR,
        )


def read_source(path: str | Path) -> Source:
    """Read a YAML file into a Source; unreadable or malformed files raise a located SpecError."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(Mark(name, 1, 1), "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(Mark(name, 1, 1), "", f"cannot read file: {exc}")]) from None
    return parse_source(text, name)


def parse_source(text: str, name: str = "<string>") -> Source:
    """Parse YAML text into a Source with a mark for every node.

    libyaml reads it when PyYAML has it. A text it rejects is read again by the pure parser, whose errors say
    more (which character cannot start a token, which alias is undefined)."""
    try:
        try:
            return _compose(text, name, _FastLoader)
        except yaml.YAMLError:
            return _compose(text, name, _Loader)
    except yaml.reader.ReaderError as exc:
        where = Source(name=name, text=text, data=None)._mark_at(min(exc.position, len(text)))
        raise SpecError([Problem(where, "", f"the file holds a character YAML does not allow: U+{exc.character:04X}",
                                 "remove control characters from the file")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(name, mark.line + 1, mark.column + 1) if mark else Mark(name, 1, 1)
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise SpecError([Problem(where, "", f"YAML syntax error: {message}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(Mark(name, 1, 1), "", f"YAML error: {exc}")]) from None
    except RecursionError:
        raise SpecError([Problem(Mark(name, 1, 1), "", "the YAML is nested too deeply")]) from None


def _compose(text: str, name: str, loader_class: type) -> Source:
    source = Source(name=name, text=text, data=None)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(Mark(name, 1, 1), "", "the file is empty",
                                     "write a job, environment or compute YAML")])
        problems: list[Problem] = []
        source.data = _build(loader, node, (), source, problems)
        if any(p.severity is Severity.ERROR for p in problems):
            raise SpecError(problems)
        source.warnings = problems
        return source
    finally:
        loader.dispose()


MAX_NODES = 100_000  # aliases can multiply a small file into a huge one; job YAML is never this big


def _build(loader: _Loader, node: yaml.Node, path: Path_, source: Source, problems: list[Problem]) -> Any:
    source.spans[path] = (node.start_mark.index, node.end_mark.index)
    source.nodes += 1
    if source.nodes > MAX_NODES:
        raise SpecError([Problem(Mark(source.name, 1, 1), "", f"the document has more than {MAX_NODES} nodes")])
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys: merged pairs come first, written ones override
        result: dict = {}
        own = range(node.start_mark.index, node.end_mark.index)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(
                    Problem(source._mark_at(key_node.start_mark.index), yaml_path(path), "a mapping key must be a plain value")
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            child = path + (key,)
            if key in result and source.key_spans.get(child) in own:  # written twice: the last wins, as in Azure ML
                problems.append(
                    Problem(
                        source._mark_at(key_node.start_mark.index),
                        yaml_path(child),
                        f"duplicate key '{key}': this later value is the one used, as Azure ML reads it",
                        f"line {source.mark(child, key=True).line} sets it too; keep one of them",
                        Severity.WARNING,
                    )
                )
            if key in result:  # the earlier value's marks go (a `<<` merged one is overridden without a word)
                _forget(source, child, result[key])
            source.key_spans[child] = key_node.start_mark.index
            result[key] = _build(loader, value_node, child, source, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), source, problems) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _forget(source: Source, path: Path_, value: Any) -> None:
    """Drop the marks of a value that a duplicate key replaced, so that none points at the text that lost."""
    source.spans.pop(path, None)
    source.key_spans.pop(path, None)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        _forget(source, path + (key,), child)
