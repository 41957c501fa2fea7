"""No benchmark reaches past loopback, as no test does: MLflow's usage reports are off in the benchmark's process
and in every process, server and container it starts (the engine passes these opt-outs into containers)."""

from __future__ import annotations

import os


def stay_offline() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
