"""(job, compute) -> ExecutionPlan: what runs where, with which environment. Pure, printable, and the only
thing a backend receives.

Paths in a plan are as the job's processes see them: `root` is the job folder on the host for the local
backend, a mount point inside a container for Docker. Staging (the code snapshot, inputs) is described here
and done by the engine.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .spec import RenderError, SubmitError, render
from .spec.canonical import dumps_value
from .spec.model import CommandJob, Compute, Environment, Input, Resources

MLFLOW_SCHEMES = ("runs:/", "mlflow-artifacts:/", "models:/")
AZURE_ONLY = ("azureml:", "wasbs://", "wasb://", "abfss://", "abfs://", "adl://", "s3://", "gs://")
DEFAULT_MASTER_PORT = 6105  # Azure ML's MASTER_PORT


@dataclass(frozen=True)
class InputPlan:
    name: str
    kind: str  # literal, none, local, url, mlflow, direct
    value: str | None  # what ${{inputs.name}} becomes
    source: str | None = None  # host path, URL or MLflow URI
    mode: str | None = None
    target: str | None = None  # where it is staged, relative to the job folder
    is_file: bool = False


@dataclass(frozen=True)
class OutputPlan:
    name: str
    type: str
    target: str  # folder relative to the job folder (named-outputs/<name>)
    value: str  # what ${{outputs.name}} becomes


@dataclass(frozen=True)
class Mount:
    """A host path the job's processes see at `target` (for backends that do not share this file system)."""

    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ProcessPlan:
    rank: int
    node_rank: int
    local_rank: int
    command: str
    env: dict[str, str]
    log: str  # relative to the job folder


@dataclass(frozen=True)
class ExecutionPlan:
    name: str
    experiment_name: str
    compute: str
    backend: str
    root: str  # the job folder as the processes see it
    workdir: str  # relative to root: the code snapshot, the command's working directory
    code: str | None  # host folder to snapshot
    inputs: tuple[InputPlan, ...]
    outputs: tuple[OutputPlan, ...]
    processes: tuple[ProcessPlan, ...]
    timeout: int | None
    environment: Environment | None
    resources: Resources
    distribution: str | None
    nodes: int = 1
    image: str | None = None  # the image to run, once a container backend has resolved `environment`
    mounts: tuple[Mount, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # identity for containers and pods (job, Airflow ids)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))


def build_plan(
    job: CommandJob,
    compute: Compute,
    *,
    name: str,
    backend: str,
    root: str,
    tracking_env: dict[str, str],
    hosts: list[str] | None = None,
    master_port: int = DEFAULT_MASTER_PORT,
) -> ExecutionPlan:
    """Resolve bindings and per-rank environments for `job` on `compute`; raises SubmitError on what cannot run."""
    trial = job.trial
    inputs = tuple(_input_plan(i, job.base_dir, root) for i in job.inputs.values())
    outputs = tuple(_output_plan(o.name, o.type, root) for o in job.outputs.values())
    values = {f"inputs.{i.name}": i.value for i in inputs}
    values.update({f"outputs.{o.name}": o.value for o in outputs})
    try:
        command = render(trial.command, values)
    except RenderError as exc:
        raise SubmitError(str(exc)) from None
    env = {"PYTHONUNBUFFERED": "1", "AZUREML_RUN_ID": name, "AZUREML_ARM_PROJECT_NAME": job.experiment_name or ""}
    env.update(tracking_env)
    env.update({f"AZURE_ML_INPUT_{i.name}": i.value for i in inputs if i.value is not None})
    env.update({f"AZURE_ML_OUTPUT_{o.name}": o.value for o in outputs})
    nodes = trial.resources.instance_count
    from .launchers import Layout, launcher_for

    layout = Layout(command, nodes, hosts or ["127.0.0.1"] * nodes, master_port, env, dict(trial.environment_variables))
    processes = launcher_for(trial.distribution).ranks(layout)
    code = local_code(trial.code, job.base_dir)
    code = str(code) if code else None
    if trial.code and not code:
        raise SubmitError(f"code '{trial.code}' is not a local folder; mljobs snapshots local code only")
    return ExecutionPlan(
        name=name,
        experiment_name=job.experiment_name or "Default",
        compute=compute.name,
        backend=backend,
        root=root,
        workdir="wd",
        code=code,
        inputs=inputs,
        outputs=outputs,
        processes=processes,
        timeout=job.timeout,
        environment=trial.environment,
        resources=trial.resources,
        distribution=trial.distribution.type if trial.distribution else None,
        nodes=nodes,
    )


def with_run(plan: ExecutionPlan, run_env: dict[str, str]) -> ExecutionPlan:
    """The plan with the job's MLflow run in every rank's environment, where the job's own variables do not
    set it. The run is created while the backend prepares, so its identity joins the plan last."""
    processes = tuple(replace(p, env={**run_env, **p.env}) for p in plan.processes)
    return replace(plan, processes=processes)


def _is_local(code: str) -> bool:
    return "://" not in code and not code.startswith(("azureml:", "git+"))


def _input_plan(item: Input, base_dir: Path, root: str) -> InputPlan:
    if item.is_literal:
        value = None if item.value is None else dumps_value(item.value)
        return InputPlan(item.name, "literal" if value is not None else "none", value)
    if item.path is None:
        return InputPlan(item.name, "none", None)
    path, mode = item.path, item.mode
    is_file = item.type == "uri_file"
    if mode == "direct":
        return InputPlan(item.name, "direct", path, source=path, mode=mode)
    if path.startswith(AZURE_ONLY):
        raise SubmitError(
            f"input '{item.name}': {path} is Azure storage, which mljobs cannot reach; give a local path, an "
            f"http(s) URL or an MLflow URI (runs:/<run-id>/<path>) instead"
        )
    folder = f"inputs/{item.name}"
    if path.startswith(("http://", "https://")):
        basename = posixpath.basename(path.split("?", 1)[0].rstrip("/")) or item.name
        target = f"{folder}/{basename}"
        return InputPlan(item.name, "url", posixpath.join(root, target), source=path, mode=mode, target=target,
                         is_file=True)
    if path.startswith(MLFLOW_SCHEMES):
        return InputPlan(item.name, "mlflow", posixpath.join(root, folder), source=path, mode=mode, target=folder,
                         is_file=False)
    source = local_source(path, base_dir)
    target = f"{folder}/{source.name}" if is_file else folder
    return InputPlan(item.name, "local", posixpath.join(root, target), source=str(source), mode=mode,
                     target=target, is_file=is_file)


def local_source(path: str, base_dir: Path) -> Path:
    """The host path of a local input (`data/x.csv`, `file:///srv/x.csv`), relative to the YAML's folder."""
    local = path[len("file://"):] if path.startswith("file://") else path
    return (base_dir / local).resolve()


def is_local_path(path: str) -> bool:
    """Whether an input's path is on this machine (not a URL, an MLflow URI or Azure storage)."""
    return not path.startswith(("http://", "https://", *MLFLOW_SCHEMES, *AZURE_ONLY))


def local_code(code: str | None, base_dir: Path) -> Path | None:
    """The host folder of a job's local `code`; None when it has none."""
    return (base_dir / code).resolve() if code and _is_local(code) else None


def _output_plan(name: str, kind: str, root: str) -> OutputPlan:
    folder = f"named-outputs/{name}"
    value = posixpath.join(root, folder, name) if kind == "uri_file" else posixpath.join(root, folder)
    return OutputPlan(name, kind, folder, value)
