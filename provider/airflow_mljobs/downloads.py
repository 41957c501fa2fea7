"""Fetch a run's artifacts into a local folder safely: what a store lists is data, never a path to trust.

A run's artifacts are written by its job's own code (`mlflow.log_artifact`, files in ./outputs, a container with
the artifact root mounted), so their names are whatever that code chose: `..`, `%2e%2e` (which MLflow and web
servers decode to `..`), a newline, a NUL, a backslash, or a symbolic link into the rest of the machine, or to
a folder above itself (a loop). MLflow's own `download_artifacts` of a folder stops at the first such name with
a traceback, and leaves half the folder behind.

`fetch` walks the listing instead, one level at a time, through MLflow's artifact repository of the run (what
MLflow's client lists and downloads with: a folder, a tracking server's proxied store, s3://, ...), and checks
every name before anything is written: each regular file it safely can is fetched by that repository into a
scratch folder inside the destination, under a name made here, and moved to its place, which is always below
the destination; everything else is reported, one line each, and skipped:

- a name that is empty, `.` or `..`, holds `/` or `\\`, an unprintable character (a newline, a NUL, ...), or
  percent-decodes to any of these (`%2e%2e`, `a%2fb`), as MLflow's own path check decodes it;
- a symbolic link (to a file or a folder; seen where the run's artifacts are a folder of this machine, a
  `file:` location, as the embedded store's and the workspace server's are): it is not followed;
- a folder nested deeper than MAX_DEPTH (what a link loop looks like through a tracking server);
- a file the store fails to give (the error's first line);
- a place in the destination taken by something else: a file where a folder must go, or a symbolic link.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

MAX_DEPTH = 64  # folders below the fetched one; deeper is a loop (a link through a server) or nothing worth it


def unsafe_component(name: str) -> str | None:
    """Why `name` cannot be one component of a relative path written below a folder, or None when it can."""
    if not isinstance(name, str) or name == "":
        return "an empty name"
    seen, text = [name], name
    for _ in range(4):  # %252e%252e decodes to %2e%2e, then to ..
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        seen.append(decoded)
        text = decoded
    for form in seen:
        encoded = " (percent-encoded)" if form is not name else ""
        if form in (".", ".."):
            return f"a '{form}' name{encoded}"
        if "/" in form or "\\" in form:
            return f"a name holding a path separator{encoded}"
        if any(not ch.isprintable() for ch in form):
            return f"a name holding an unprintable character (a newline, a NUL, ...){encoded}"
    return None


def unsafe_path(path: str) -> str | None:
    """Why the relative artifact path `path` (`outputs/model.pkl`) cannot be written below a folder, or None."""
    if not isinstance(path, str) or path == "":
        return "an empty path"
    if path.startswith("/"):
        return "an absolute path"
    for part in path.split("/"):
        why = unsafe_component(part)
        if why:
            return why
    return None


def shown(path: str) -> str:
    """`path` as one line of text: control characters written as escapes (`new\\nline.txt`)."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(path))


def fetch(record, artifact_path: str, destination: Path, report: Callable[[str], None]) -> Path | None:
    """Fetch the run's artifact `artifact_path` (a file or a folder) to `destination/<its last name>`, as MLflow's
    client places it, with every file checked first (see the module). `record` is a JobRecord (its
    `artifact_uri`, else its `client` and `run_id` to read it; its `tracker.uri`). Returns the path made, or None
    when nothing of it could be written; `report` receives one line for each thing skipped."""
    return _Fetch(record, Path(destination), report).run(artifact_path)


def listing(record, path: str | None, report: Callable[[str], None]) -> list[str]:
    """The artifact paths directly below `path` (the run's root when None) whose names are safe; the others are
    reported and left out."""
    kept = []
    for info in _repository(record).list_artifacts(path):
        why = _unsafe_entry(info.path, path)
        if why:
            report(f"skipped {shown(info.path)}: {why}")
        else:
            kept.append(info.path)
    return kept


class _Fetch:
    def __init__(self, record, destination: Path, report: Callable[[str], None]) -> None:
        self.repo = _repository(record)
        self.root = _local_root(self.repo.artifact_uri)  # the run's folder, when it is on this machine
        self.destination = destination
        self.report = report
        self.scratch: Path | None = None  # where files arrive, inside the destination, before they move to their place
        self.count = 0

    def run(self, artifact_path: str) -> Path | None:
        why = unsafe_path(artifact_path)
        if why:
            self.report(f"skipped {shown(artifact_path)}: {why}")
            return None
        parent = posixpath.dirname(artifact_path) or None
        entry = next((i for i in self.repo.list_artifacts(parent) if i.path == artifact_path), None)
        if entry is None:
            self.report(f"skipped {shown(artifact_path)}: not in the run's artifacts")
            return None
        parts = artifact_path.split("/")
        if any(self._linked("/".join(parts[:i])) for i in range(1, len(parts))):  # a folder above it is a link
            return None
        self.destination.mkdir(parents=True, exist_ok=True)
        base = self.destination.resolve()
        name = parts[-1]
        try:
            if not entry.is_dir:
                return self._file(artifact_path, base, (name,))
            if self._linked(artifact_path) or not self._folder(base, (name,), artifact_path):
                return None
            self._walk(artifact_path, base, (name,), 0)
            return base / name
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _walk(self, folder: str, base: Path, parts: tuple, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self.report(f"skipped {shown(folder)}: nested deeper than {MAX_DEPTH} folders (a link loop?)")
            return
        try:
            entries = self.repo.list_artifacts(folder)
        except Exception as exc:
            self.report(f"skipped {shown(folder)}: cannot be listed: {_first_line(exc)}")
            return
        for info in sorted(entries, key=lambda i: i.path):
            why = _unsafe_entry(info.path, folder)
            if why:
                self.report(f"skipped {shown(info.path)}: {why}")
                continue
            inner = (*parts, posixpath.basename(info.path))
            if self._linked(info.path):
                continue
            if info.is_dir:
                if self._folder(base, inner, info.path):
                    self._walk(info.path, base, inner, depth + 1)
            else:
                self._file(info.path, base, inner)

    def _linked(self, path: str) -> bool:
        """Whether `path` is a symbolic link (or not a file or folder) in the run's local folder; reported."""
        if self.root is None:
            return False
        try:
            mode = os.lstat(self.root / path).st_mode
        except OSError:
            return False  # listed but not there: the fetch says why
        if stat.S_ISLNK(mode):
            self.report(f"skipped {shown(path)}: a symbolic link, not followed")
            return True
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            self.report(f"skipped {shown(path)}: not a regular file or folder")
            return True
        return False

    def _folder(self, base: Path, parts: tuple, path: str) -> bool:
        """Make `base/parts...` a real folder, through real folders only; False (reported) when it cannot be."""
        here = base
        for part in parts:
            here = here / part
            try:
                mode = os.lstat(here).st_mode
            except FileNotFoundError:
                try:
                    here.mkdir()
                except OSError as exc:
                    self.report(f"skipped {shown(path)}: cannot make {shown(here)}: {exc.strerror}")
                    return False
                continue
            if not stat.S_ISDIR(mode):  # a symbolic link (S_ISDIR is false for one, lstat not following it) or a file
                self.report(f"skipped {shown(path)}: {shown(here)} is in the way (not a folder)")
                return False
        return True

    def _file(self, path: str, base: Path, parts: tuple) -> Path | None:
        if self._linked(path) or not self._folder(base, parts[:-1], path):
            return None
        target = base.joinpath(*parts)
        if target.is_dir() and not target.is_symlink():
            self.report(f"skipped {shown(path)}: {shown(target)} is a folder")
            return None
        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(dir=base, prefix=".mljobs-download-"))
        self.count += 1
        try:
            fetched = self._download(path, self.scratch / str(self.count))
        except Exception as exc:  # MLflow says "not found" or "invalid path" in several exception types
            self.report(f"skipped {shown(path)}: cannot be fetched: {_first_line(exc)}")
            return None
        try:
            inside = os.path.realpath(fetched).startswith(os.path.realpath(self.scratch) + os.sep)
            if not inside or not stat.S_ISREG(os.lstat(fetched).st_mode):
                self.report(f"skipped {shown(path)}: the store gave something other than a regular file")
                return None
            os.replace(fetched, target)  # a link at `target` is replaced, never followed
        except OSError as exc:
            self.report(f"skipped {shown(path)}: cannot be written: {exc.strerror or exc}")
            return None
        return target

    def _download(self, path: str, local: Path) -> Path:
        """The artifact file `path`, fetched by the repository to `local` (a name made here, in the scratch folder).
        Every MLflow artifact repository fetches one file with `_download_file`, which its `download_artifacts`
        calls for each file after listing the path again (6 ms a file here, for nothing: it was just listed)."""
        one = getattr(self.repo, "_download_file", None)
        if one is None:
            slot = Path(tempfile.mkdtemp(dir=self.scratch))
            return Path(self.repo.download_artifacts(path, str(slot)))
        one(remote_file_path=path, local_path=str(local))
        return local

def _repository(record):
    """MLflow's artifact repository of the run (the one its client lists and downloads through), made once per
    fetch: the client's own calls look the run up again for every file, 40 ms each."""
    from .loading import collector_paused

    with collector_paused():
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    location = getattr(record, "artifact_uri", None) or record.client.get_run(record.run_id).info.artifact_uri
    return get_artifact_repository(location, tracking_uri=record.tracker.uri)


def _unsafe_entry(path: str, folder: str | None) -> str | None:
    """Why a listed entry of `folder` cannot be written; it must be `folder/<one safe name>`."""
    prefix = f"{folder.strip('/')}/" if folder else ""
    if not isinstance(path, str) or not path.startswith(prefix):
        return f"listed outside {shown(folder or 'the run')}"
    return unsafe_component(path[len(prefix):])


def _local_root(artifact_uri: str | None) -> Path | None:
    """The run's artifact folder on this machine, for a `file:` location (or a plain path)."""
    if not artifact_uri:
        return None
    parts = urllib.parse.urlsplit(artifact_uri)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme == "" and artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return shown(text[0]) if text else type(exc).__name__
