"""Lay out a job folder on this host: the code snapshot, the inputs, the output folders.

    <job>/wd/               the code snapshot; the command's working directory (./outputs, ./logs)
    <job>/inputs/<name>/    each input: a link (ro_mount) or a copy (download)
    <job>/named-outputs/<name>/
    <job>/user_logs/        stdout and stderr of every rank

The snapshot honours `.amlignore` (or, without one, `.gitignore`) and has a size and file-count limit, as
Azure ML's has. URLs are downloaded with retries into a content-addressed cache shared by all jobs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .plan import ExecutionPlan, InputPlan, Mount
from .spec import SubmitError

SNAPSHOT_MAX_MB = float(os.environ.get("MLJOBS_SNAPSHOT_MAX_MB", "300"))
SNAPSHOT_MAX_FILES = int(os.environ.get("MLJOBS_SNAPSHOT_MAX_FILES", "2000"))
DOWNLOAD_ATTEMPTS = 4


@dataclass(frozen=True)
class Snapshot:
    files: int
    bytes: int

    def describe(self) -> str:
        return f"code snapshot: {self.files} files, {self.bytes / 1e6:.2f} MB"


@dataclass(frozen=True)
class Staged:
    snapshot: Snapshot
    mounts: tuple[Mount, ...]  # read-only inputs the backend must mount (when it cannot follow links)


def prepare_job_folder(plan: ExecutionPlan, job_dir: Path, cache: Path, fetch_mlflow=None, *,
                       links: bool = True, on_made=None) -> Staged:
    """Create the job folder; on any error remove it, so that no half-made job is left behind.

    With `links`, read-only inputs are symbolic links to their source; without (a container cannot follow a
    link to the host), they are listed as mounts instead. `on_made()` runs the moment the folder exists (the
    submitter notes itself there, so that a folder whose submitter died while staging is known for one).
    """
    try:
        job_dir.mkdir(parents=True)
    except FileExistsError:
        raise SubmitError(f"job folder {job_dir} already exists") from None
    except OSError as exc:
        raise SubmitError(f"cannot create the job folder {job_dir}: {exc.strerror}") from None
    try:
        if on_made is not None:
            on_made()
        snapshot = snapshot_code(Path(plan.code) if plan.code else None, job_dir / plan.workdir)
        for sub in ("outputs", "logs"):
            (job_dir / plan.workdir / sub).mkdir(exist_ok=True)
        (job_dir / "user_logs").mkdir()
        for output in plan.outputs:
            (job_dir / output.target).mkdir(parents=True)
        mounts = []
        for item in plan.inputs:
            source = stage_input(item, job_dir, cache, fetch_mlflow, links=links)
            if source is not None:
                mounts.append(Mount(str(source), f"{plan.root}/{item.target}", read_only=True))
        return Staged(snapshot, tuple(mounts))
    except BaseException:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise


# -- code snapshot ------------------------------------------------------------------------------------
def snapshot_code(code: Path | None, destination: Path) -> Snapshot:
    if code is None:
        destination.mkdir(parents=True)
        return Snapshot(0, 0)
    if code.is_file():  # `code: train.py`: Azure ML snapshots that one file
        destination.mkdir(parents=True)
        shutil.copy2(code, destination / code.name)
        return Snapshot(1, code.stat().st_size)
    if not code.is_dir():
        raise SubmitError(f"code {code} does not exist" if not code.exists() else f"code {code} is not a file or folder")
    ignored = _ignore_spec(code)
    files, total = [], 0
    for folder, dirs, names in os.walk(code):
        rel_folder = Path(folder).relative_to(code)
        dirs[:] = [d for d in dirs if d != ".git" and not _ignored(ignored, rel_folder / d, True)]
        for name in names:
            rel = rel_folder / name
            if _ignored(ignored, rel, False):
                continue
            path = Path(folder) / name
            size = path.lstat().st_size
            files.append(rel)
            total += size
            if len(files) > SNAPSHOT_MAX_FILES or total > SNAPSHOT_MAX_MB * 1e6:
                raise SubmitError(
                    f"code folder {code} is over the snapshot limit ({SNAPSHOT_MAX_FILES} files, {SNAPSHOT_MAX_MB:g} MB); "
                    f"list what the job does not need in {code / '.amlignore'} (gitignore syntax), or raise "
                    f"MLJOBS_SNAPSHOT_MAX_FILES / MLJOBS_SNAPSHOT_MAX_MB"
                )
    destination.mkdir(parents=True)
    for rel in files:
        target = destination / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(code / rel, target, follow_symlinks=False)
    return Snapshot(len(files), total)


def _ignore_spec(code: Path):
    for name in (".amlignore", ".gitignore"):
        rules = code / name
        if rules.is_file():
            import pathspec

            return pathspec.GitIgnoreSpec.from_lines(rules.read_text().splitlines())
    return None


def _ignored(spec, rel: Path, is_dir: bool) -> bool:
    if spec is None:
        return False
    text = rel.as_posix() + ("/" if is_dir else "")
    return spec.match_file(text)


# -- inputs --------------------------------------------------------------------------------------------
def stage_input(item: InputPlan, job_dir: Path, cache: Path, fetch_mlflow=None, *, links: bool = True) -> Path | None:
    """Place one input in the job folder; returns the host path to mount instead, when `links` is off."""
    if item.kind in ("literal", "none", "direct"):
        return None
    copy = item.mode in ("download", "eval_download")
    target = job_dir / item.target
    target.parent.mkdir(parents=True, exist_ok=True)
    if item.kind == "local":
        source = Path(item.source)
        if not source.exists():
            raise SubmitError(f"input '{item.name}': {source} does not exist")
        if item.is_file and not source.is_file():
            raise SubmitError(f"input '{item.name}' is a uri_file but {source} is a folder")
        if not item.is_file and not source.is_dir():
            raise SubmitError(f"input '{item.name}' is a uri_folder but {source} is a file")
        if not copy and not links:
            return source
        _place(source, target, copy=copy)
    elif item.kind == "url":
        cached = download(item.source, cache)
        if not copy and not links:
            return cached
        _place(cached, target, copy=copy)
    elif item.kind == "mlflow":
        if fetch_mlflow is None:
            raise SubmitError(f"input '{item.name}': no MLflow store to fetch {item.source} from")
        scratch = Path(tempfile.mkdtemp(dir=job_dir, prefix=".fetch-"))
        try:
            fetched = Path(fetch_mlflow(item.source, scratch))
            os.replace(fetched, target)
        except Exception as exc:  # MLflow says "not found" in several exception types
            raise SubmitError(f"input '{item.name}': cannot fetch {item.source}: {exc}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return None


def _place(source: Path, target: Path, *, copy: bool) -> None:
    if copy:
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)
    else:
        target.symlink_to(source, target_is_directory=source.is_dir())


def download(url: str, cache: Path) -> Path:
    """Fetch `url` once into the content-addressed cache (retrying transient errors) and return the file."""
    index = cache / "urls.json"
    known = json.loads(index.read_text()) if index.is_file() else {}
    if url in known and (cache / known[url]).is_file():
        return cache / known[url]
    cache.mkdir(parents=True, exist_ok=True)
    name = Path(url.split("?", 1)[0].rstrip("/")).name or "download"
    delay = 0.5
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            fetched, digest = _fetch_once(url, cache)
            break
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == DOWNLOAD_ATTEMPTS:
                raise SubmitError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # incl. a body cut short
            if attempt == DOWNLOAD_ATTEMPTS:
                raise SubmitError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
        time.sleep(delay)
        delay *= 2
    relative = f"sha256/{digest.hexdigest()}/{name}"
    final = cache / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(fetched, final)
    known[url] = relative
    staged = index.with_suffix(".tmp")
    staged.write_text(json.dumps(known, indent=1))
    os.replace(staged, index)
    return final


def _fetch_once(url: str, cache: Path) -> tuple[Path, "hashlib._Hash"]:
    """Download `url` into a temporary file of the cache; a failed attempt leaves no partial file behind."""
    with tempfile.NamedTemporaryFile(dir=cache, delete=False, prefix=".part-") as tmp:
        try:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=60) as response:
                received = 0
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    tmp.write(chunk)
                    received += len(chunk)
                announced = response.headers.get("Content-Length")
                if announced and announced.isdigit() and received < int(announced):  # read(n) stops quietly
                    raise http.client.IncompleteRead(b"", int(announced) - received)
        except BaseException:
            os.unlink(tmp.name)
            raise
    return Path(tmp.name), digest


# -- provenance ----------------------------------------------------------------------------------------
def git_info(folder: Path | None) -> dict[str, str]:
    """Commit, branch, remote and dirty flag of the repository holding `folder` (empty outside git)."""
    if folder is None or not folder.exists() or not _inside_git(folder.resolve()):
        return {}

    def git(*args):
        result = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        return result.stdout if result.returncode == 0 else ""

    try:
        status = git("status", "--porcelain=v2", "--branch", "--", ".")
        remote = git("config", "--get", "remote.origin.url").strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    headers = dict(line[2:].split(" ", 1) for line in status.splitlines() if line.startswith("# ") and " " in line[2:])
    commit = headers.get("branch.oid", "")
    if not commit or commit == "(initial)":
        return {}
    dirty = any(not line.startswith("#") for line in status.splitlines())
    info = {"commit": commit, "branch": headers.get("branch.head", ""), "remote": remote,
            "dirty": "true" if dirty else "false"}
    return {k: v for k, v in info.items() if v and v != "(detached)"}


def _inside_git(folder: Path) -> bool:
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))
