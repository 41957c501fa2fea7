"""The end of a job, written once: what it left uploaded, its terminal status, its result in its folder.

One finalizer at a time (a lock the system releases if its process dies); the others wait for it and read its
result, or with `wait=False` return None at once (a signal handler must not wait for the code it interrupted).
A finalizer that died midway is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..backends import Outcome
from ..spec import SubmitError
from ..tracking import JobRecord
from ..tracking import tags as T
from .jobs import JobResult, Submission
from .uploads import has_files, uploadable


def finalize(engine, submission: Submission, outcome: Outcome | None = None, on_finish: str = "delete",
             wait: bool = True) -> JobResult | None:
    """Collect, upload and record the job's end, once; later calls read the saved result."""
    result_file = submission.job_dir / "result.json"
    if result_file.is_file():
        return JobResult(**json.loads(result_file.read_text()))
    outcome = outcome or submission.handle.poll()
    if outcome is None:
        raise SubmitError(f"job '{submission.name}' is still running")
    with _finalizing(submission.job_dir, wait) as taken_over:
        if taken_over is None:  # another finalizer is at work
            return None
        if result_file.is_file():  # finalized by another process while this one waited
            return JobResult(**json.loads(result_file.read_text()))
        outcome = _the_outcome(submission.job_dir / "outcome.json", outcome, taken_over)
        result = _finalize(engine, submission, outcome, on_finish, taken_over)
        result_file.write_text(json.dumps(result.to_dict(), indent=1))
        return result


def _the_outcome(saved: Path, outcome: Outcome, taken_over: bool) -> Outcome:
    """The outcome the first finalizer saw, kept before it removes anything (a container holds a job's exit
    status): one that takes over from a finalizer that died reads it there, not in what is left."""
    if taken_over and saved.is_file():
        return Outcome(**json.loads(saved.read_text()))
    saved.write_text(json.dumps({"status": outcome.status, "exit_code": outcome.exit_code, "reason": outcome.reason}))
    return outcome

def _finalize(engine, submission: Submission, outcome: Outcome, on_finish: str, taken_over: bool) -> JobResult:
    submission.handle.collect()
    tail = _log_tail(submission.job_dir / "user_logs")
    workdir = submission.job_dir / "wd"
    named = submission.job_dir / "named-outputs"
    named_outputs = sorted(named.iterdir()) if named.is_dir() else []
    outputs = {}
    # the one writer of the job's end need not read its status first, unless it takes over from a finalizer
    # that died (which may have written it); containers are removed meanwhile (an engine round trip). The
    # store's calls stay one at a time: a store in this process shares its interpreter lock, and a tracking
    # server runs one worker, so two at once take as long
    with ThreadPoolExecutor(max_workers=1) as pool:
        releasing = pool.submit(submission.handle.release, outcome.status, on_finish)
        record = JobRecord(engine.tracker, submission.run_id, submission.experiment_id, submission.name,
                           submission.artifact_uri, job_dir=submission.job_dir)
        current = "Running"
        if taken_over:
            tags = record.tags()
            current = tags.get(T.STATUS, current)
            if current in T.TERMINAL:  # the finalizer that died wrote the job's end: that is its outcome
                code = tags.get(T.EXIT_CODE)
                outcome = Outcome(current, int(code) if code else None, tags.get(T.REASON))
        if current not in T.TERMINAL and (named_outputs or has_files(workdir / "outputs")):
            current = "Finalizing"  # logs alone upload in a moment: no status for that
            record.set_status(current)
        skipped: list[str] = []
        folders = [(workdir / "outputs", "outputs"), (workdir / "logs", "logs"),
                   *((folder, f"named-outputs/{folder.name}") for folder in named_outputs)]
        for folder, artifact_path in folders:
            with uploadable(folder, submission.job_dir, skipped) as safe:
                record.log_dir(safe, artifact_path)
        outputs.update({folder.name: str(folder) for folder in named_outputs})
        if skipped:  # said in the job's log and on its record; the job's end stands
            _note_skipped(submission.job_dir / "user_logs", skipped)
            record.set_tags({T.SKIPPED: "; ".join(skipped)[:5000]})
        record.log_dir(submission.job_dir / "user_logs", "user_logs")
        record.set_status(outcome.status, reason=outcome.reason, exit_code=outcome.exit_code, current=current)
        metrics = _final_metrics(engine, submission)
        releasing.result()  # what it raised, raised here
    return JobResult(submission.name, outcome.status, submission.run_id, submission.experiment_id,
                     outcome.exit_code, outcome.reason, metrics, outputs,
                     tail if outcome.status != "Completed" else "")


def record_unstarted(record, job_dir: Path, status: str, reason: str, current: str | None,
                     params: dict | None = None) -> None:
    """The end of a job none of whose processes ran: its status and reason, the logs it has (an image build's),
    and its result in its folder."""
    record.log_dir(job_dir / "user_logs", "user_logs")
    record.set_status(status, reason=reason, current=current, params=params)
    result = JobResult(record.name, status, record.run_id, record.experiment_id, None, reason)
    (job_dir / "result.json").write_text(json.dumps(result.to_dict()))


@contextlib.contextmanager
def _finalizing(job_dir: Path, wait: bool = True):
    """Hold the job's finalizing lock (waiting while another finalizer holds it, unless not `wait`: then yields
    None); yields whether a finalizer started before and did not finish (it died: its lock went with it, the
    mark it left stays)."""
    import fcntl

    with open(job_dir / "finalizing", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        lock.seek(0)
        taken_over = bool(lock.read())
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield taken_over


def _final_metrics(engine, submission: Submission) -> dict:
    """The job's metrics, final now that it has ended; none when the store cannot be read just now (its end then
    waits in the job folder, see `tracking/pending.py`)."""
    from ..tracking.pending import passing

    try:
        return dict(engine.tracker.run(submission.run_id).data.metrics)
    except Exception as exc:
        if not passing(exc):
            raise
        return {}


def _note_skipped(user_logs: Path, skipped: list[str]) -> None:
    with open(user_logs / "std_log.txt", "a") as log:
        log.writelines(f"mljobs: WARNING: not uploaded: {line}\n" for line in skipped)


def _log_tail(folder: Path, lines: int = 30) -> str:
    files = sorted(folder.glob("std_log*.txt")) if folder.is_dir() else []
    tail = []
    for path in files:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", errors="replace").splitlines()[-lines:]
        prefix = f"[{path.stem}] " if len(files) > 1 else ""
        tail.extend(prefix + line for line in text)
    return "\n".join(tail[-lines:])
