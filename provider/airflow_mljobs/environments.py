"""Environment references (`azureml:AzureML-sklearn-1.5@latest`, registry URIs) resolved through a table.

Azure's curated and registered environments do not exist here; a user-editable table says what each name
means on this machine. A name missing from both tables is an error that says where to add it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .spec import SubmitError
from .spec.model import Environment, environment_from

PACKAGED = Path(__file__).with_name("curated_environments.yml")
_REGISTRY = re.compile(r"^azureml://registries/[^/]+/environments/([^/]+)")


def reference_name(reference: str) -> str:
    """`azureml:AzureML-sklearn-1.5@latest` and `azureml:name:3` -> the environment's name."""
    match = _REGISTRY.match(reference)
    if match:
        return match.group(1)
    name = reference[len("azureml:"):] if reference.startswith("azureml:") else reference
    return re.split(r"[@:]", name, maxsplit=1)[0]


def resolve_environment(env: Environment | None, home: Path) -> Environment | None:
    """The inline environment a reference stands for (inline environments come back as they are)."""
    if env is None or env.reference is None:
        return env
    name = reference_name(env.reference)
    user_table = home / "environments.yml"
    for table in (user_table, PACKAGED):
        entries = _read(table)
        if name in entries:
            entry = entries[name]
            conda = entry.get("conda_file")
            if isinstance(conda, str):
                entry = {**entry, "conda_file": str((table.parent / conda).resolve())}
            return environment_from(entry, source=str(table))
    raise SubmitError(
        f"environment '{env.reference}' is not known here; add an entry '{name}:' with an image (and optionally a "
        f"conda_file) to {user_table}, for example:\n  {name}:\n    image: python:3.11-slim"
    )


def _read(table: Path) -> dict:
    if not table.is_file():
        return {}
    try:
        data = yaml.safe_load(table.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SubmitError(f"cannot read the environment table {table}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SubmitError(f"the environment table {table} must map names to environments (image, conda_file, build)")
    return data
