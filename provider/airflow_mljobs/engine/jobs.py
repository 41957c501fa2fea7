"""What a front door holds of a job: its submission (enough to attach again) and its result, and a run described
as `mljobs job show` prints it."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..backends import Handle
from ..tracking import tags as T


@dataclass
class Submission:
    """A submitted (or re-attached) job: what a front door holds while it follows the job."""

    name: str
    run_id: str
    experiment_id: str
    job_dir: Path
    handle: Handle
    timeout: int | None
    started_at: float
    reattached: bool = False
    notes: list[str] = field(default_factory=list)
    artifact_uri: str | None = None  # the run's artifact location: uploads at the end need not read the run for it

    def to_dict(self) -> dict:
        """Everything needed to attach again (from a trigger, on_kill or a retry), as plain JSON."""
        return {"name": self.name, "run_id": self.run_id, "experiment_id": self.experiment_id,
                "job_dir": str(self.job_dir), "handle": self.handle.to_dict(), "timeout": self.timeout,
                "started_at": self.started_at, "artifact_uri": self.artifact_uri}


@dataclass(frozen=True)
class JobResult:
    name: str
    status: str
    run_id: str
    experiment_id: str
    exit_code: int | None = None
    reason: str | None = None
    metrics: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    log_tail: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SUBMITTER = "submitter"  # in a job folder: the pid and start time of the process that submitted the job
COMPUTE_SETTINGS = "compute_settings"  # in plan.json: the settings given over the compute's (an engine URL)

# MLflow reports usage to its makers unless one of these is set; a user's opt-out follows their jobs into containers
TELEMETRY_OPT_OUTS = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")


def describe(run) -> dict:
    tags = run.data.tags
    return {
        "name": tags.get(T.JOB_NAME, run.info.run_name),
        "type": tags.get(T.JOB_TYPE, "command"),
        "status": tags.get(T.STATUS, "NotStarted"),
        "experiment_id": run.info.experiment_id,
        "run_id": run.info.run_id,
        "compute": tags.get(T.COMPUTE),
        "start_time": _iso(run.info.start_time),
        "end_time": _iso(run.info.end_time),
        "exit_code": int(tags[T.EXIT_CODE]) if tags.get(T.EXIT_CODE, "").lstrip("-").isdigit() else None,
        "failure_reason": tags.get(T.REASON),
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": {k: v for k, v in tags.items() if not k.startswith("mlflow.") and not k.startswith("mljobs.")},
    }


def _iso(millis: int | None) -> str | None:
    if not millis:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(millis / 1000))
