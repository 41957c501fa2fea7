"""The canonical model: typed, frozen views of a validated document, one class per thing a user writes.

Built only from documents that passed the schemas, so constructors trust shapes and types. Every class
keeps to Azure's field names, so that `to_dict()` prints the job as today's YAML would write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .canonical import LITERAL_TYPES


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    path: str | None = None
    mode: str | None = None
    value: Any = None
    optional: bool = False
    description: str | None = None

    @property
    def is_literal(self) -> bool:
        return self.type in LITERAL_TYPES

    @property
    def has_value(self) -> bool:
        return self.value is not None or self.path is not None


@dataclass(frozen=True)
class Output:
    name: str
    type: str = "uri_folder"
    mode: str = "rw_mount"
    path: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Build:
    path: str
    dockerfile_path: str = "Dockerfile"


@dataclass(frozen=True)
class Environment:
    """An inline environment, or a `reference` (azureml:..., a registry URI) resolved later by a backend."""

    image: str | None = None
    build: Build | None = None
    conda_file: str | dict | None = None
    name: str | None = None
    version: str | None = None
    description: str | None = None
    os_type: str = "linux"
    reference: str | None = None
    source: str | None = None  # the file an environment was read from, when it has one


@dataclass(frozen=True)
class Resources:
    instance_count: int = 1
    instance_type: str | None = None
    shm_size: str | None = None
    docker_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Distribution:
    type: str
    process_count_per_instance: int = 1
    worker_count: int | None = None
    parameter_server_count: int = 0


@dataclass(frozen=True)
class Trial:
    """What runs: a command job's body, or each trial of a sweep."""

    command: str
    code: str | None = None
    environment: Environment | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    distribution: Distribution | None = None


@dataclass(frozen=True)
class Job:
    """Fields every job has."""

    type: str
    name: str | None
    display_name: str | None
    experiment_name: str | None
    description: str | None
    tags: dict[str, Any]
    compute: str | None
    inputs: dict[str, Input]
    outputs: dict[str, Output]
    source: Path | None  # the YAML file; relative paths in the job are relative to its folder

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()


@dataclass(frozen=True)
class CommandJob(Job):
    trial: Trial = None  # type: ignore[assignment]
    timeout: int | None = None


@dataclass(frozen=True)
class Objective:
    goal: str
    primary_metric: str


@dataclass(frozen=True)
class SamplingAlgorithm:
    type: str
    seed: int | None = None
    rule: str | None = None
    logbase: float | str | None = None


@dataclass(frozen=True)
class SweepLimits:
    max_total_trials: int = 1000
    max_concurrent_trials: int = 1000
    timeout: int | None = None
    trial_timeout: int | None = None


@dataclass(frozen=True)
class EarlyTermination:
    type: str
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    truncation_percentage: int | None = None


@dataclass(frozen=True)
class SweepJob(Job):
    trial: Trial = None  # type: ignore[assignment]
    sampling_algorithm: SamplingAlgorithm = None  # type: ignore[assignment]
    search_space: dict[str, dict] = field(default_factory=dict)
    objective: Objective = None  # type: ignore[assignment]
    limits: SweepLimits = field(default_factory=SweepLimits)
    early_termination: EarlyTermination | None = None


@dataclass(frozen=True)
class Compute:
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)  # everything else the compute YAML says


# -- builders -----------------------------------------------------------------------------------------------
def _pick(cls, data: dict, **extra):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names}, **extra)


def environment_from(data, source: str | None = None) -> Environment | None:
    if data is None:
        return None
    if isinstance(data, str):
        return Environment(reference=data)
    build = _pick(Build, data["build"]) if data.get("build") else None
    env = {k: v for k, v in data.items() if k != "build"}
    if "version" in env:
        env["version"] = str(env["version"])
    return _pick(Environment, env, build=build, **({"source": source} if source else {}))


def trial_from(data: dict, env_source: str | None = None) -> Trial:
    resources = data.get("resources") or {}
    return Trial(
        command=data["command"],
        code=data.get("code"),
        environment=environment_from(data.get("environment"), env_source),
        environment_variables={k: ("" if v is None else v) for k, v in (data.get("environment_variables") or {}).items()},
        resources=_pick(Resources, {**resources, "docker_args": tuple(resources.get("docker_args") or ())}),
        distribution=_pick(Distribution, data["distribution"]) if data.get("distribution") else None,
    )


def job_from(data: dict, source: Path | None, env_source: str | None = None) -> CommandJob | SweepJob:
    common = dict(
        type=data["type"],
        name=data.get("name"),
        display_name=data.get("display_name"),
        experiment_name=data.get("experiment_name"),
        description=data.get("description"),
        tags=dict(data.get("tags") or {}),
        compute=data.get("compute"),
        inputs={n: _pick(Input, v, name=n) for n, v in (data.get("inputs") or {}).items()},
        outputs={n: _pick(Output, v, name=n) for n, v in (data.get("outputs") or {}).items()},
        source=source,
    )
    if data["type"] == "sweep":
        policy = data.get("early_termination")
        return SweepJob(
            **common,
            trial=trial_from(data["trial"], env_source),
            sampling_algorithm=_pick(SamplingAlgorithm, data["sampling_algorithm"]),
            search_space=dict(data["search_space"]),
            objective=_pick(Objective, data["objective"]),
            limits=_pick(SweepLimits, data.get("limits") or {}),
            early_termination=_pick(EarlyTermination, policy) if policy else None,
        )
    return CommandJob(**common, trial=trial_from(data, env_source), timeout=(data.get("limits") or {}).get("timeout"))


def compute_from(data: dict) -> Compute:
    settings = {k: v for k, v in data.items() if k not in ("name", "type", "$schema")}
    return Compute(name=data["name"], type=data["type"], settings=settings)
