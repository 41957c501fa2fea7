"""What can be known about a job before it starts, said where its YAML says it.

Loading checks a job's shape; this checks it against this machine and workspace: a code folder or input path
that is not there, a compute not registered here, a container job without an image, a refused `docker_args`
flag, a conda file or build context that is missing. `validate`, `--dry-run` and submit all run it, so a job
that cannot start is never recorded, and every message names the file, the line and the YAML path to fix.
"""

from __future__ import annotations

from pathlib import Path

from . import compute as computes
from .backends import get_backend
from .launchers import LAUNCHERS, unsupported
from .plan import is_local_path, local_code, local_source
from .spec import CommandJob, Document, Problem, SpecError, SubmitError
from .spec.errors import yaml_path


def check(document: Document, home: Path) -> None:
    """Raise SpecError with every problem found; return quietly when there is none."""
    found = problems(document, home)
    if found:
        raise SpecError(found)


def problems(document: Document, home: Path) -> list[Problem]:
    job = document.model
    trial = job.trial
    at = () if isinstance(job, CommandJob) else ("trial",)  # where the trial's own fields are written
    found: list[Problem] = []

    def add(path: tuple, message: str, hint: str = "") -> None:
        found.append(Problem(document.source.mark(path), yaml_path(path), message, hint))

    code = local_code(trial.code, job.base_dir)
    if code is not None and not (code.is_dir() or code.is_file()):
        add((*at, "code"), f"{code} {'is not a file or folder' if code.exists() else 'does not exist'}",
            "code names the folder (or the one file) snapshotted for the job, relative to the YAML file")
    for item in job.inputs.values():
        if item.is_literal or not item.path or item.mode == "direct" or not is_local_path(item.path):
            continue
        source = local_source(item.path, job.base_dir)
        if not source.exists():
            add(("inputs", item.name, "path"), f"{source} does not exist", "a local path is relative to the YAML file")
        elif item.type == "uri_file" and not source.is_file():
            add(("inputs", item.name, "path"), f"{source} is a folder, and the input is a uri_file",
                "give a file, or type: uri_folder")
        elif item.type != "uri_file" and not source.is_dir():
            add(("inputs", item.name, "path"), f"{source} is a file, and the input is a {item.type}",
                "give a folder, or type: uri_file")
    distribution = trial.distribution.type if trial.distribution else None
    if distribution not in LAUNCHERS:
        add((*at, "distribution", "type"), unsupported(distribution), "use pytorch, tensorflow or mpi")
    try:
        backend = get_backend(computes.backend_name(computes.resolve(job.compute, home)))
    except SubmitError as exc:
        add(("compute",), str(exc))
        return found
    if backend.placement.image:
        _container_problems(job, at, home, add)
    return found


def _container_problems(job, at: tuple, home: Path, add) -> None:
    """A container job needs an image (or a build context, or a conda file layered on an image) and settings
    that keep it isolated."""
    from .backends.docker_args import parse_docker_args
    from .environments import resolve_environment

    trial = job.trial
    try:
        parse_docker_args(trial.resources.docker_args)
    except SubmitError as exc:
        add((*at, "resources", "docker_args"), str(exc).removeprefix("resources.docker_args: "))
    try:
        env = resolve_environment(trial.environment, home)
    except SubmitError as exc:
        add((*at, "environment"), str(exc))
        return
    if env is None or not (env.image or env.build):
        add((*at, "environment"), "a container job needs an environment with an image or a build context",
            "environment: {image: python:3.11-slim}")
        return
    base = Path(env.source).parent if env.source else job.base_dir
    if env.build is not None:
        context = (base / env.build.path).resolve()
        if not context.is_dir():
            add((*at, "environment", "build", "path"), f"build context {context} is not a folder")
        elif not (context / env.build.dockerfile_path).is_file():
            add((*at, "environment", "build", "dockerfile_path"), f"no {env.build.dockerfile_path} in {context}")
    if isinstance(env.conda_file, str) and not (base / env.conda_file).resolve().is_file():
        add((*at, "environment", "conda_file"), f"{(base / env.conda_file).resolve()} does not exist")
