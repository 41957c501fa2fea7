"""Where the job record lives: `MLFLOW_TRACKING_URI` when set, else an embedded store in the workspace.

The embedded default is a folder (`.mljobs/` in the current directory, or `$MLJOBS_HOME`) holding an SQLite
tracking store and the artifact root, so that a laptop needs no server and no configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrackingConfig:
    home: Path  # the workspace folder: job folders, input cache, and (embedded) the store
    tracking_uri: str
    artifact_root: str | None  # set for the embedded store; a server decides its own

    @property
    def embedded(self) -> bool:
        return self.artifact_root is not None

    @property
    def database(self) -> Path | None:
        """The embedded store's SQLite file."""
        return self.home / "mlflow.db" if self.embedded else None


def workspace_home(home: str | Path | None = None) -> Path:
    return Path(home or os.environ.get("MLJOBS_HOME") or Path.cwd() / ".mljobs").resolve()


def resolve_tracking(home: str | Path | None = None, tracking_uri: str | None = None) -> TrackingConfig:
    """An explicit URI wins, then `MLFLOW_TRACKING_URI`, then the embedded store under `home`."""
    root = workspace_home(home)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return TrackingConfig(root, uri, None)
    return TrackingConfig(root, f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
