"""Where a run's files go: its artifact location, written without MLflow's client where that is a plain copy.

A run's artifact location is a folder (`file:`, the embedded store and the workspace's server) or a tracking
server's proxied artifact store (`mlflow-artifacts:`); both are written here, a copy or an HTTP PUT per file.
Any other location (s3://, gs://, ...) goes through MLflow's artifact repositories.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from ..loading import collector_paused
from .rest import RestClient

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def artifact_store(location: str, tracking_uri: str, client):
    """Something with MLflow's `log_artifact(file, artifact_path)` and `log_artifacts(folder, artifact_path)`."""
    parts = urllib.parse.urlsplit(location)
    if parts.scheme == "file":
        return LocalFolder(Path(urllib.request.url2pathname(parts.path)))
    if parts.scheme == "mlflow-artifacts" and isinstance(client, RestClient):
        return ProxiedArtifacts(client, location)
    with collector_paused():
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(location, tracking_uri=tracking_uri)


class LocalFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        folder = self.root / (artifact_path or "")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_file, folder / os.path.basename(local_file))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        shutil.copytree(local_dir, self.root / (artifact_path or ""), dirs_exist_ok=True, copy_function=shutil.copyfile)


class ProxiedArtifacts:
    """A tracking server's `--serve-artifacts` store: one PUT per file, below the run's location."""

    def __init__(self, client: RestClient, location: str) -> None:
        parts = urllib.parse.urlsplit(location)
        if parts.netloc:  # mlflow-artifacts://host:port/...: that host, spoken to as the tracking server is
            scheme = urllib.parse.urlsplit(client.uri).scheme
            client = RestClient(f"{scheme}://{parts.netloc}")
        self.client = client
        self.base = PROXY + "/" + parts.path.strip("/")

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        name = os.path.basename(local_file)
        target = posixpath.join(self.base, artifact_path or "", name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.client.put_file(urllib.parse.quote(target), local_file, content_type)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        for folder, _, files in os.walk(local_dir):
            relative = os.path.relpath(folder, local_dir)
            inner = posixpath.join(artifact_path or "", "" if relative == "." else Path(relative).as_posix())
            for name in sorted(files):
                self.log_artifact(os.path.join(folder, name), inner or None)
