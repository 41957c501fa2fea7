"""Docker images for jobs: an image as named, a build context, or a conda file layered on an image.

Every image mljobs builds is tagged by a content hash of everything that went into it (the base image's id,
the conda file's packages, or every file of a build context), so a second run with the same inputs builds
nothing. Containers may reach no package index: the packages of a conda file are downloaded on the host into a
wheelhouse (cached) and installed from it in the build, with `pip install --no-index`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

import yaml

from ..spec import SubmitError
from ..spec.model import Environment

Log = Callable[[str], None]
RECIPE_VERSION = "1"  # bump when the layering recipe changes, so old tags are not reused
_SKIP = {"python", "pip", "conda", "setuptools", "wheel"}


def image_for(client, env: Environment | None, base_dir: Path, cache: Path, log: Log) -> str:
    """The tag of an image that holds `env`, pulling or building what is missing."""
    if env is None or not (env.image or env.build):
        raise SubmitError("a docker job needs an environment with an image or a build context "
                          "(environment: {image: python:3.11-slim})")
    if env.build is not None:
        return _build_context(client, _within(env, base_dir, env.build.path), env.build.dockerfile_path, log)
    if env.conda_file is None and (client.api.base_url, env.image) in _SEEN:
        return env.image
    base = _ensure_image(client, env.image, log)
    if env.conda_file is None:
        return env.image
    packages = pip_requirements(_conda(env, base_dir))
    if not packages:
        return env.image
    digest = _hash(RECIPE_VERSION, base.id, *packages)
    tag = f"mljobs-env:{digest}"
    if _exists(client, tag):
        log(f"image {tag} ({env.image} + {len(packages)} packages) is built already\n")
        return tag
    version = _python_version(client, env.image)
    wheels = _wheelhouse(packages, version, cache / "wheelhouse" / _hash(version, *packages), log)
    dockerfile = (f"FROM {env.image}\nCOPY wheels /tmp/mljobs-wheels\n"
                  f"RUN python3 -m pip install --no-index --no-cache-dir --find-links /tmp/mljobs-wheels "
                  + " ".join(_quote(p) for p in packages) + " && rm -rf /tmp/mljobs-wheels\n")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        tar.add(str(wheels), arcname="wheels")
    context.seek(0)
    log(f"building {tag}: {env.image} + {', '.join(packages)}\n")
    _run_build(client, log, fileobj=context, custom_context=True, tag=tag, labels={"mljobs.recipe": RECIPE_VERSION})
    return tag


def pip_requirements(conda: dict) -> list[str]:
    """The pip packages of a conda environment: its `pip:` list, and its conda packages as pip names."""
    packages: list[str] = []
    for item in conda.get("dependencies") or []:
        if isinstance(item, dict):
            packages.extend(str(p) for p in item.get("pip") or [])
        elif isinstance(item, str):
            name = re.split(r"[=<>!~ ]", item.split("::")[-1], maxsplit=1)[0]
            if name.lower() in _SKIP:
                continue
            version = item.split("::")[-1][len(name):].strip()
            if version.startswith("=") and not version.startswith("=="):
                version = "==" + version.lstrip("=") + ("" if version.count(".") > 1 else ".*")
            packages.append(name + version)
    return packages


# -- helpers ------------------------------------------------------------------------------------------------------
def _conda(env: Environment, base_dir: Path) -> dict:
    if isinstance(env.conda_file, dict):
        return env.conda_file
    source = Path(env.source).parent if env.source else base_dir
    path = (source / env.conda_file).resolve()
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise SubmitError(f"conda file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise SubmitError(f"cannot read conda file {path}: {exc}") from None


def _within(env: Environment, base_dir: Path, relative: str) -> Path:
    source = Path(env.source).parent if env.source else base_dir
    path = (source / relative).resolve()
    if not path.is_dir():
        raise SubmitError(f"build context {path} is not a folder")
    return path


def _build_context(client, context: Path, dockerfile: str, log: Log) -> str:
    if not (context / dockerfile).is_file():
        raise SubmitError(f"no {dockerfile} in build context {context}")
    digest = hashlib.sha256(RECIPE_VERSION.encode())
    digest.update(dockerfile.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    tag = f"mljobs-build:{digest.hexdigest()[:24]}"
    if _exists(client, tag):
        log(f"image {tag} (build context {context}) is built already\n")
        return tag
    log(f"building {tag} from {context}\n")
    _run_build(client, log, path=str(context), dockerfile=dockerfile, tag=tag)
    return tag


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _run_build(client, log: Log, **kwargs) -> None:
    from docker.errors import APIError, BuildError

    tail: list[str] = []
    try:
        for chunk in client.api.build(decode=True, rm=True, forcerm=True, **kwargs):
            text = _ANSI.sub("", chunk.get("stream") or "")  # a build's colours are noise in a log file
            if text:
                log(text)
                tail = (tail + text.splitlines())[-30:]
            if "error" in chunk:
                raise BuildError(chunk["error"], [])
    except (BuildError, APIError) as exc:
        detail = "\n".join(tail[-15:])
        raise SubmitError(f"the image build failed: {exc}\n{detail}") from None


# The images this process found on an engine (its URL, the image's name): a later job of the process need not
# ask again (an engine round trip of a few ms before its container can be created). One removed since then is
# pulled again when its container cannot be created (`pull_again`).
_SEEN: set[tuple[str, str]] = set()


def _ensure_image(client, name: str, log: Log):
    from docker.errors import APIError, ImageNotFound

    try:
        image = client.images.get(name)
    except ImageNotFound:
        log(f"pulling {name}\n")
        try:
            image = client.images.pull(name)
        except APIError as exc:
            raise SubmitError(f"image {name} is not on this Docker engine and cannot be pulled: "
                              f"{exc.explanation or exc}") from None
    _SEEN.add((client.api.base_url, name))
    return image


def pull_again(client, name: str, log: Log) -> None:
    """The image `name` was found by this process and removed since: look for it, or pull it, again."""
    _SEEN.discard((client.api.base_url, name))
    _ensure_image(client, name, log)


def _exists(client, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
        return True
    except ImageNotFound:
        return False


def _python_version(client, image: str) -> str:
    """The image's `major.minor` Python, asked once per image id and remembered in a label-free cache."""
    output = client.containers.run(image, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   remove=True, network_mode="none")
    return output.decode().strip()


def _wheelhouse(packages: list[str], python: str, folder: Path, log: Log) -> Path:
    """Download wheels for `packages` (and what they need) for the image's Python, once."""
    done = folder / ".complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    log(f"downloading wheels for Python {python}: {', '.join(packages)}\n")
    machine = os.uname().machine
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder), "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp",
               "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
               "--platform", f"manylinux_2_17_{machine}", "--platform", f"linux_{machine}", *packages]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise SubmitError(f"cannot download the packages of the conda file: {tail}")
    done.write_text(json.dumps(packages))
    return folder


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
