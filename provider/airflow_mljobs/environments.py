"""Environment references (`azureml:AzureML-sklearn-1.5@latest`, registry URIs) resolved through a table.

Azure's registered environments do not exist here; a user-editable table says what each name means on this
machine, then the package's own. A curated name that neither table holds (`AzureML-<name>:<version>`, or a
name in Azure's `azureml` registry) is the image Azure publishes it as, `mcr.microsoft.com/azureml/curated/
<name>:<version>`, and says so. Any other name missing from both tables is an error that says where to add it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import yaml

from .spec import SubmitError
from .spec.model import Environment, environment_from

PACKAGED = Path(__file__).with_name("curated_environments.yml")
CURATED_IMAGES = "mcr.microsoft.com/azureml/curated"
_REGISTRY = re.compile(r"^azureml://registries/[^/]+/environments/([^/]+)")
_CURATED = re.compile(r"^azureml:AzureML-(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>latest))?$")
_CURATED_REGISTRY = re.compile(
    r"^azureml://registries/azureml/environments/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>latest))?$")
_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def reference_name(reference: str) -> str:
    """`azureml:AzureML-sklearn-1.5@latest` and `azureml:name:3` -> the environment's name."""
    match = _REGISTRY.match(reference)
    if match:
        return match.group(1)
    name = reference[len("azureml:"):] if reference.startswith("azureml:") else reference
    return re.split(r"[@:]", name, maxsplit=1)[0]


def curated_image(reference: str) -> str | None:
    """The image Azure publishes a curated environment as: `azureml:AzureML-sklearn-0.24-ubuntu18.04-py37-cpu:1`
    is `mcr.microsoft.com/azureml/curated/sklearn-0.24-ubuntu18.04-py37-cpu:1` (`@latest`, or no version: latest);
    None for a name that is not a curated one."""
    match = _CURATED.match(reference) or _CURATED_REGISTRY.match(reference)
    if not match:
        return None
    name, tag = match.group("name").lower(), match.group("version") or "latest"
    return f"{CURATED_IMAGES}/{name}:{tag}" if _IMAGE_NAME.match(name) and _IMAGE_TAG.match(tag) else None


def resolve_environment(env: Environment | None, home: Path, note: Callable[[str], None] | None = None
                        ) -> Environment | None:
    """The inline environment a reference stands for (inline environments come back as they are); `note` hears
    of a curated name read as Azure's image, which the job had not said."""
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
    image = curated_image(env.reference)
    if image:
        if note:
            note(f"environment '{env.reference}' runs as Azure's curated image {image} (it is in neither {user_table} "
                 f"nor the package's table; an entry '{name}:' there chooses another image)")
        return Environment(image=image)
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
