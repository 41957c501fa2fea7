"""The workspace's tracking server as it starts: its store made or migrated whole first, in its own process, then
the process becomes MLflow's server (the same pid). The command that needed the server never loads MLflow.

    python -m airflow_mljobs.tracking.serve <database> <artifact root> <mlflow server command...>
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..loading import collector_paused
from .database import StoreError, ensure_store, migrate_if_needed


def main(argv: list[str]) -> int:
    database, root, *command = argv
    try:
        ensure_store(Path(database), root or None)
        with collector_paused():
            migrate_if_needed(Path(database), root or None)
    except StoreError as exc:
        print(f"mljobs: {exc}", file=sys.stderr, flush=True)
        return 1
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
