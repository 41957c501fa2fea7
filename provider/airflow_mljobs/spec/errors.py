"""The one error tree of the project, and the located problems that spec errors carry.

A user's mistake is a value with a place (file, line, column, YAML path) and a hint, never a traceback.
Loading collects every problem of a file before it raises, so one run shows them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Mark:
    """Where a YAML node starts: 1-based line and column in `source` (a file path or a `--set` argument)."""

    source: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        if self.line == 0 or self.source.startswith("--set "):  # an argument, not a file: no lines
            return self.source
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One located finding about a document: an error stops the job, a warning is reported and carried on."""

    mark: Mark
    path: str
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        text = f"{self.mark}: {self.severity.value}: {where}{self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict:
        return {
            "file": self.mark.source,
            "line": self.mark.line,
            "column": self.mark.column,
            "path": self.path,
            "severity": self.severity.value,
            "message": self.message,
            "hint": self.hint,
        }


class MlJobsError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass
class SpecError(MlJobsError):
    """A document could not be loaded; `problems` holds every error (and the warnings seen on the way)."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = sorted(self.problems, key=lambda p: (p.mark.source, p.mark.line, p.mark.column))
        super().__init__(self.__str__())

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.errors) or "invalid document"


class SubmitError(MlJobsError):
    """A valid job could not be started (missing input, unreachable engine, name already used, ...)."""


class NotRunnable(SubmitError):
    """A job that cannot start as it is given, however often it is tried (its name is taken, or not a name):
    front doors fail at once, without retries."""


class JobLost(SubmitError):
    """A job whose submitter died before it started, leaving nothing to attach to: it is recorded Failed, and a
    retry starts afresh under a new name."""


class JobFailed(MlJobsError):
    """A job ended Failed, Canceled or timed out; carries the tail of its log as evidence."""

    def __init__(self, message: str, *, status: str = "Failed", logs_tail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.logs_tail = logs_tail


def did_you_mean(word: str, choices) -> str:
    """A hint naming the choice closest to a misspelt `word`, or an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def yaml_path(parts) -> str:
    """Render a path tuple as users write it: `trial.inputs.data`, `resources.docker_args[1]`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
