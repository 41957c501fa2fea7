"""JobTrigger: wait for a job in the triggerer, without holding a worker slot.

It holds only the job's serialized handle and where its record lives, polls the backend off the event loop,
enforces `limits.timeout`, and yields one event when the job has ended. `on_kill` (a user marked the deferred
task failed or cleared it) cancels the job and records its end, as no task resumes to do it; `cleanup` touches
nothing, so a triggerer restart never stops it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent


class JobTrigger(BaseTrigger):
    def __init__(self, submission: dict, home: str | None = None, tracking_uri: str | None = None,
                 poll_interval: float = 5.0, on_finish: str = "delete") -> None:
        super().__init__()
        self.submission = submission
        self.home = home
        self.tracking_uri = tracking_uri
        self.poll_interval = poll_interval
        self.on_finish = on_finish

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("airflow_mljobs.airflow.triggers.JobTrigger",
                {"submission": self.submission, "home": self.home, "tracking_uri": self.tracking_uri,
                 "poll_interval": self.poll_interval, "on_finish": self.on_finish})

    def _handle(self):
        from ..backends import get_backend

        data = self.submission["handle"]
        return get_backend(data["backend"]).attach(data)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        name = self.submission["name"]
        try:
            handle = await asyncio.to_thread(self._handle)
            timeout = self.submission.get("timeout")
            while True:
                outcome = await asyncio.to_thread(handle.poll)
                if outcome is not None:
                    yield TriggerEvent({"name": name, "status": outcome.status, "reason": outcome.reason})
                    return
                if timeout and time.time() - self.submission["started_at"] > timeout:
                    await asyncio.to_thread(handle.cancel, f"timed out after limits.timeout of {timeout} s")
                    continue
                await asyncio.sleep(self.poll_interval)
        except Exception as exc:  # an error is an event, so that the task can say what went wrong
            yield TriggerEvent({"name": name, "status": "Error", "reason": f"{type(exc).__name__}: {exc}"})

    async def on_kill(self) -> None:
        await asyncio.to_thread(self._cancel)

    def _cancel(self) -> None:
        """Stop the job, then record its end and remove what it left (its containers), as its task would have."""
        from ..engine import Engine

        engine = Engine(home=self.home, tracking_uri=self.tracking_uri, prefer_server=True)
        engine.stop(engine.attach(self.submission["name"]), "killed by Airflow", self.on_finish)
