"""Following a job: its outcome, its new log lines, its time limits and its live ./logs, in one loop.

Every front door follows a job this way: the CLI and an operator block in `Follower.run`, the trigger takes one
`step` at a time off its event loop, and a sweep steps each of its trials in turn.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from ..backends import Outcome
from ..backends.supervisor import TIMEOUT_REASON
from .jobs import Submission

LOG_UPLOAD_SECONDS = float(os.environ.get("MLJOBS_LOG_UPLOAD_SECONDS", "10"))


class Follower:
    """One job followed from `since` (a resume token of its log): each step writes the lines that came."""

    def __init__(self, submission: Submission, write: Callable[[str], None] | None = None, since: dict | None = None,
                 *, upload: Callable[[Submission], None] | None = None, deadline: float | None = None,
                 deadline_reason: str = "the deadline passed") -> None:
        """`upload`: sends ./logs to the record while the job runs; `deadline` (epoch seconds): the job is canceled
        then, with `deadline_reason` (an Airflow task's execution_timeout)."""
        self.submission = submission
        self.write = write
        self.token = dict(since or {})
        self.upload = upload
        self.deadline = deadline
        self.deadline_reason = deadline_reason
        self.moved = False  # the last step wrote something
        self._next_upload = time.time() + LOG_UPLOAD_SECONDS

    def step(self, wait: float = 0.0) -> Outcome | None:
        """Poll (waiting up to `wait` for a change), enforce the limits, write the new lines; the outcome once
        the job has ended, else None."""
        handle = self.submission.handle
        outcome = handle.poll(wait) or self.expire()
        self.moved = False
        for chunk in handle.logs(self.token, final=outcome is not None):
            if self.write is not None:
                self.write(chunk.text)
            self.token = chunk.token
            self.moved = True
        if outcome is None and self.upload is not None and time.time() >= self._next_upload:
            self.upload(self.submission)
            self._next_upload = time.time() + LOG_UPLOAD_SECONDS
        return outcome

    def expire(self) -> Outcome | None:
        """Cancel a job past its `limits.timeout` or the follower's deadline; its outcome then, else None."""
        submission, now = self.submission, time.time()
        if submission.timeout and now - submission.started_at > submission.timeout:
            return submission.handle.cancel(TIMEOUT_REASON.format(seconds=submission.timeout))
        if self.deadline and now > self.deadline:
            return submission.handle.cancel(self.deadline_reason)
        return None

    def run(self, poll_interval: float = 0.1, on_token: Callable[[dict], None] | None = None) -> Outcome:
        """Step until the job ends, waiting longer between quiet steps (up to `poll_interval`)."""
        wait = 0.0
        while True:
            outcome = self.step(wait)
            if self.moved and on_token is not None:
                on_token(self.token)
            if outcome is not None:
                return outcome
            wait = 0.0 if self.moved else min(max(wait * 2, 0.01), poll_interval)
