"""Triggers: waiting in the triggerer, without holding a worker slot.

JobTrigger waits for the job a CommandJobOperator started (JobStatusTrigger, at the end, for JobSensor).

It holds only the job's serialized handle and where its record lives, polls the backend off the event loop,
writes the job's new log lines to its own log (which Airflow shows in the deferred task's log, live), enforces
`limits.timeout`, and yields one event when the job has ended, with how far the log was written. `on_kill` (a user marked the deferred
task failed or cleared it) cancels the job and records its end, as no task resumes to do it; `cleanup` touches
nothing, so a triggerer restart never stops it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent


class JobTrigger(BaseTrigger):
    def __init__(self, submission: dict, home: str | None = None, tracking_uri: str | None = None,
                 poll_interval: float = 5.0, on_finish: str = "delete", deadline: float | None = None) -> None:
        """`deadline` (epoch seconds): the task's `execution_timeout`, after which the job is canceled here."""
        super().__init__()
        self.submission = submission
        self.home = home
        self.tracking_uri = tracking_uri
        self.poll_interval = poll_interval
        self.on_finish = on_finish
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("airflow_mljobs.airflow.triggers.JobTrigger",
                {"submission": self.submission, "home": self.home, "tracking_uri": self.tracking_uri,
                 "poll_interval": self.poll_interval, "on_finish": self.on_finish, "deadline": self.deadline})

    def _handle(self):
        from ..backends import get_backend

        data = self.submission["handle"]
        return get_backend(data["backend"]).attach(data)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        name = self.submission["name"]
        try:
            follower = await asyncio.to_thread(self._follower)
            while (outcome := await asyncio.to_thread(follower.step)) is None:
                await asyncio.sleep(self.poll_interval)
            yield TriggerEvent({"name": name, "status": outcome.status, "reason": outcome.reason,
                                "logged": follower.token})
        except Exception as exc:  # an error is an event, so that the task can say what went wrong
            yield TriggerEvent({"name": name, "status": "Error", "reason": f"{type(exc).__name__}: {exc}"})

    def _follower(self):
        """The engine's follower of the job, writing its lines to this trigger's log as the task logs them, and
        canceling it at the task's `execution_timeout`."""
        from ..engine import Follower, Submission
        from .operators import _LineLogger

        data = self.submission
        submission = Submission(data["name"], data["run_id"], data["experiment_id"], Path(data["job_dir"]),
                                self._handle(), data.get("timeout"), data["started_at"], reattached=True)
        return Follower(submission, _LineLogger(self.log), deadline=self.deadline,
                        deadline_reason="killed by Airflow: the task's execution_timeout passed")

    async def on_kill(self) -> None:
        await asyncio.to_thread(self._cancel)

    def _cancel(self) -> None:
        """Stop the job, then record its end and remove what it left (its containers), as its task would have."""
        from ..engine import Engine

        engine = Engine(home=self.home, tracking_uri=self.tracking_uri, prefer_server=True)
        engine.stop(engine.attach(self.submission["name"]), "killed by Airflow", self.on_finish)


class JobStatusTrigger(BaseTrigger):
    """Wait for a job's record to show that it ended (JobSensor's deferrable mode): the record, not the job's
    processes, so it waits for any job in the store. `on_kill` leaves the job alone: it is not the task's."""

    def __init__(self, name: str, home: str | None = None, tracking_uri: str | None = None,
                 poll_interval: float = 60.0) -> None:
        super().__init__()
        self.name = name
        self.home = home
        self.tracking_uri = tracking_uri
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("airflow_mljobs.airflow.triggers.JobStatusTrigger",
                {"name": self.name, "home": self.home, "tracking_uri": self.tracking_uri,
                 "poll_interval": self.poll_interval})

    def _job(self) -> dict | None:
        from ..engine import Engine, describe
        from ..tracking.tags import TERMINAL

        run = Engine(home=self.home, tracking_uri=self.tracking_uri, prefer_server=True).job(self.name)
        job = describe(run) if run is not None else None
        return job if job is not None and job["status"] in TERMINAL else None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            while (job := await asyncio.to_thread(self._job)) is None:
                await asyncio.sleep(self.poll_interval)
            yield TriggerEvent({"name": self.name, "status": job["status"], "job": job})
        except Exception as exc:  # an error is an event, so that the task can say what went wrong
            yield TriggerEvent({"name": self.name, "status": "Error", "reason": f"{type(exc).__name__}: {exc}"})
