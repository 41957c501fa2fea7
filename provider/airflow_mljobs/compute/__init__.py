"""Compute targets: the built-in `local` and `docker`, and targets registered from compute YAML.

`compute: azureml:cpu-cluster` in a job names a registered target (`mljobs compute create -f cluster.yml`
stores it under the workspace); a job without compute runs on `local`, as serverless jobs run somewhere.
"""

from __future__ import annotations

from pathlib import Path

from ..backends.base import BACKENDS
from ..naming import check_segment
from ..spec import NotRunnable, SpecError, SubmitError, load
from ..spec.dump import dump_yaml
from ..spec.model import Compute

BUILTIN = {"local": Compute(name="local", type="local"), "docker": Compute(name="docker", type="docker")}
BACKEND_TYPES = ("kubernetes",)  # compute types run by the backend of that name, besides every registered one


def compute_name(ref: str | None) -> str:
    if not ref:
        return "local"
    name = ref[len("azureml:"):] if ref.startswith("azureml:") else ref
    return name.rsplit("/", 1)[-1]  # an ARM id ends with the compute's name


def resolve(ref: str | None, home: Path) -> Compute:
    """The compute a job's `compute:` names; a SubmitError says how to register a missing one."""
    name = compute_name(ref)
    path = _file(home, name)
    if path is not None and path.is_file():
        return load(path, expect={"compute"}).model
    if name in BUILTIN:
        return BUILTIN[name]
    if name in BACKENDS:  # every backend is a compute of its own name, as `docker` is
        return Compute(name=name, type=name)
    raise SubmitError(
        f"compute '{name}' is not registered here; register it with `mljobs compute create -f <compute.yml>` "
        f"(type local, docker or kubernetes), or run elsewhere with --set compute=local"
    )


def backend_name(compute: Compute) -> str:
    if compute.type in BACKENDS or compute.type in BACKEND_TYPES:
        return compute.type
    raise SubmitError(
            f"compute '{compute.name}' is an Azure '{compute.type}' target, which mljobs cannot start; register a "
            f"compute of type local, docker or kubernetes under the name '{compute.name}' instead"
        )


def register(path: str | Path, home: Path, overrides=None) -> Compute:
    document = load(path, overrides, expect={"compute"})
    name = check_segment(document.model.name, "compute name")  # the name is the registry's file name
    folder = _registry(home)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yml").write_text(dump_yaml(document.data))
    return document.model


def registered(home: Path) -> list[Compute]:
    found = dict(BUILTIN)
    for path in sorted(_registry(home).glob("*.yml")):
        try:
            compute = load(path, expect={"compute"}).model
        except SpecError:
            continue
        found[compute.name] = compute
    return list(found.values())


def unregister(name: str, home: Path) -> bool:
    path = _file(home, name)
    if path is not None and path.is_file():
        path.unlink()
        return True
    return False


def _registry(home: Path) -> Path:
    return home / "computes"


def _file(home: Path, name: str) -> Path | None:
    """The registry's file for `name`; None for a name no registered compute can have (`../x`, `a/b`, ...)."""
    try:
        return _registry(home) / f"{check_segment(name, 'compute name')}.yml"
    except NotRunnable:
        return None
