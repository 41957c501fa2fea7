"""The state one normalisation pass shares: the source (for marks), the problems found, and path moves."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Problem, Severity
from .source import Source


@dataclass
class Context:
    source: Source
    problems: list[Problem] = field(default_factory=list)

    def warn(self, path, message: str, hint: str = "", *, needle: str | None = None, key: bool = False) -> None:
        self.problems.append(
            self.source.problem(tuple(path), message, hint, severity=Severity.WARNING, needle=needle, key=key)
        )

    def error(self, path, message: str, hint: str = "", *, needle: str | None = None, key: bool = False) -> None:
        self.problems.append(self.source.problem(tuple(path), message, hint, needle=needle, key=key))

    def deprecated(self, path, old: str, new: str, *, needle: str | None = None) -> None:
        """A legacy spelling was read: say where, and how it is written today."""
        self.warn(path, f"'{old}' is a deprecated form", f"write it as {new}", needle=needle, key=needle is None)

    def moved(self, old_path, new_path) -> None:
        """Remember that the value now at `new_path` was written at `old_path`."""
        self.source.moves[tuple(new_path)] = self.source.written_path(tuple(old_path))

    @property
    def has_errors(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.problems)
