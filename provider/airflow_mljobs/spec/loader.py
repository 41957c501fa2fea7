"""Load a job, environment or compute YAML of any era into the canonical model, or fail with every problem.

The steps, in order: read with marks -> apply `--set` -> recognise the kind -> rewrite legacy syntax ->
expand shorthands -> validate against the schema -> check bindings and ranges -> build the typed model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from . import canonical, checks, eras, schema
from .context import Context
from .errors import Problem, Severity, SpecError
from .model import compute_from, environment_from, job_from
from .overrides import apply_overrides
from .source import Source, parse_source, read_source

JOB_KINDS = {"command", "sweep"}
UNSUPPORTED_JOBS = {"pipeline", "automl", "spark", "parallel", "import", "data_transfer", "component", "base",
                    "finetuning", "distillation"}
COMPUTE_TYPES = {"amlcompute", "computeinstance", "virtualmachine", "kubernetes", "local", "docker"}
UNSUPPORTED_COMPUTE = {"synapsespark", "aks", "databricks", "hdinsight", "datafactory"}
_SCHEMA_KINDS = {
    "commandjob": "command", "sweepjob": "sweep", "environment": "environment", "amlcompute": "compute",
    "computeinstance": "compute", "vmcompute": "compute", "kubernetescompute": "compute", "compute": "compute",
}


@dataclass
class Document:
    """A loaded document: its kind, canonical data (what gets printed), typed model, and warnings."""

    kind: str  # command, sweep, environment, compute
    data: dict
    model: object
    source: Source
    warnings: list[Problem] = field(default_factory=list)


def load(path: str | Path, overrides=None, *, expect: set[str] | None = None) -> Document:
    """Load a YAML file; `expect` limits the kinds accepted (for example {"command", "sweep"})."""
    return _load(read_source(path), overrides, expect, Path(path))


def load_text(text: str, name: str = "<string>", overrides=None, *, expect=None, base_dir=None) -> Document:
    """Load YAML text; relative paths resolve against `base_dir` (default: the current directory)."""
    path = Path(base_dir or ".") / Path(name).name
    return _load(parse_source(text, name), overrides, expect, path)


def load_job_dict(data: dict, name: str = "<job>", overrides=None, *, base_dir=None) -> Document:
    """Load a job given as a Python mapping (as Airflow operators receive it), written out as YAML first so that
    its errors have lines to point at (by libyaml's writer when PyYAML has it: the same text, sooner)."""
    import yaml

    text = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
    return load_text(text, name, overrides, expect=JOB_KINDS, base_dir=base_dir)


def _load(source: Source, overrides, expect, path: Path) -> Document:
    if not isinstance(source.data, dict):
        raise SpecError([source.problem((), "the document must be a mapping of keys to values",
                                        "start with keys such as command:, environment: and inputs:")])
    warnings = apply_overrides(source, overrides)
    kind = _kind(source)
    if expect and kind not in expect:
        wanted = " or ".join(sorted(expect))
        raise SpecError(warnings + [source.problem(("type",) if "type" in source.data else (),
                                                   f"this is {'an' if kind[0] in 'aeiou' else 'a'} {kind} document, expected {wanted}")])
    ctx = Context(source, problems=source.warnings + warnings)
    doc = source.data
    env_source = None
    if kind in JOB_KINDS:
        eras.rewrite_legacy(doc, ctx)
        canonical.canonical_job(doc, ctx)
        doc.setdefault("experiment_name", _default_experiment(path))
        env_source = _inline_environment_file(doc, path, ctx)
    elif kind == "environment":
        eras.rewrite_legacy_environment(doc, (), ctx)
        canonical.canonical_environment(doc, ctx)
    else:
        canonical.canonical_compute(doc, ctx)
    schema.validate(doc, kind, ctx)
    if kind in JOB_KINDS:
        checks.check_job(doc, ctx)
    elif kind == "environment":
        checks.check_environment(doc, ctx)
    if ctx.has_errors:
        raise SpecError(ctx.problems)
    model = _model(kind, doc, path, env_source)
    warnings = sorted((p for p in ctx.problems if p.severity is Severity.WARNING),
                      key=lambda p: (p.mark.source, p.mark.line, p.mark.column))
    return Document(kind, doc, model, source, warnings)


def _model(kind: str, doc: dict, path: Path, env_source):
    if kind in JOB_KINDS:
        return job_from(copy.deepcopy(doc), path.resolve(), env_source)
    if kind == "environment":
        return environment_from(copy.deepcopy(doc), str(path))
    return compute_from(copy.deepcopy(doc))


def _kind(source: Source) -> str:
    doc = source.data
    declared = doc.get("type")
    schema_url = doc.get("$schema")
    by_schema = None
    if isinstance(schema_url, str):
        stem = schema_url.rstrip("/").rsplit("/", 1)[-1].split(".")[0].lower()
        if stem.endswith("component"):
            _unsupported(source, "component", "a component is a pipeline building block")
        by_schema = _SCHEMA_KINDS.get(stem)
        if stem.endswith("job") and by_schema is None:
            _unsupported(source, stem[: -len("job")], None)
    if isinstance(declared, str):
        lowered = declared.lower()
        if lowered in ("command", "sweep", "sweep_job"):
            return "sweep" if lowered.startswith("sweep") else "command"
        if lowered in UNSUPPORTED_JOBS:
            _unsupported(source, lowered, None)
        if lowered in COMPUTE_TYPES:
            return "compute"
        if lowered in UNSUPPORTED_COMPUTE:
            raise SpecError([source.problem(("type",), f"compute type '{declared}' is not supported",
                                            f"mljobs runs on: {', '.join(sorted(COMPUTE_TYPES))}", needle=declared)])
        if by_schema:
            return by_schema
        raise SpecError([source.problem(("type",), f"unknown document type '{declared}'",
                                        "jobs are type: command or type: sweep; compute targets are "
                                        + ", ".join(sorted(COMPUTE_TYPES)), needle=declared)])
    if by_schema:
        return by_schema
    if "command" in doc or "trial" in doc:
        return "command" if "trial" not in doc else "sweep"
    if any(key in doc for key in ("image", "build", "conda_file", "docker")):
        return "environment"
    if "dependencies" in doc or "channels" in doc:
        raise SpecError([source.problem((), "this is a conda environment file, not a job",
                                        "name it from a job's environment.conda_file")])
    import difflib

    keys = [key for key in doc if isinstance(key, str)]
    if difflib.get_close_matches("trial", keys, n=1, cutoff=0.75):  # a misspelt key: validated as the job it
        return "sweep"                                              # most likely is, so every typo is reported
    if difflib.get_close_matches("command", keys, n=1, cutoff=0.75):
        return "command"
    raise SpecError([source.problem((), "cannot tell what this document is",
                                    "a command job needs command:; a sweep job type: sweep; an environment image: "
                                    "or build:; a compute target type: and name:")])


def _unsupported(source: Source, kind: str, why: str | None):
    detail = f" ({why})" if why else ""
    raise SpecError([source.problem(("type",) if "type" in source.data else ("$schema",),
                                    f"job type '{kind}' is not supported{detail}",
                                    "mljobs runs command and sweep jobs")])


def _anchored(env: dict, folder: Path) -> dict:
    """An environment read from a file, with its relative paths made absolute (they were relative to that file)."""
    env = dict(env)
    if isinstance(env.get("conda_file"), str) and not Path(env["conda_file"]).is_absolute():
        env["conda_file"] = str((folder / env["conda_file"]).resolve())
    if isinstance(env.get("build"), dict) and not Path(env["build"].get("path", "/")).is_absolute():
        env["build"] = {**env["build"], "path": str((folder / env["build"]["path"]).resolve())}
    return env


def _default_experiment(path: Path) -> str:
    """Azure's default: the name of the folder the job YAML is in."""
    return path.resolve().parent.name or "Default"


def _inline_environment_file(doc: dict, path: Path, ctx: Context) -> str | None:
    """Read an `environment: file:env.yml` reference into the job, so one model holds all of it."""
    holder, where = (doc.get("trial"), ("trial", "environment")) if doc.get("type") == "sweep" else (doc, ("environment",))
    if not isinstance(holder, dict):
        return None
    ref = holder.get("environment")
    if not (isinstance(ref, str) and ref.startswith("file:")):
        return None
    env_path = (path.parent / ref[len("file:"):]).resolve()
    if not env_path.is_file():
        ctx.warn(where, f"environment file {ref[len('file:'):]} not found next to the job",
                 "it is looked for again when the job is submitted")
        return None
    try:
        env_doc = load(env_path, expect={"environment"})
    except SpecError as exc:
        ctx.problems.extend(exc.problems)
        return None
    ctx.problems.extend(env_doc.warnings)
    holder["environment"] = _anchored(env_doc.data, env_path.parent)
    ctx.moved(where, where)
    return str(env_path)
