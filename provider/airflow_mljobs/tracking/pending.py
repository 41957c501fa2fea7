"""A job's record while the store refuses writes: asked again for a few seconds, then kept in the job's folder
until a process can write it, in order, and nothing is lost.

A write the store refuses for a reason that passes (another writer's lock, an I/O error, a read-only or full
disk, a tracking server that is down or busy) is asked again with back-off for `MLJOBS_STORE_RETRY_SECONDS`
(5 s). Each attempt waits at most 2 s for another writer's lock, where MLflow's SQL store would wait 20 s. If
the store still refuses, the write is appended to `<job folder>/record-pending.jsonl` (one JSON line per write:
status, tags, parameters, and which files to upload) and the user is told once, in one line. For the next 15 s
this process's other writes go there at once, without waiting again. The files of a pending upload are
hard-linked (copied where links fail) into `record-pending.files/`: the folder an upload reads may be a
temporary one, gone by the time the write is made.

The pending writes are written, in their order, by the next writer of that job's record (before its own write),
and by the next process that opens the store (`replay_all` at `open_tracker`: any `mljobs` command, any task).
A file per job in `<workspace>/record-pending/` names the job folders that hold pending writes, so that
finding them costs one directory listing. A pending write the store rejects for good (not a passing refusal)
is set aside in `record-rejected.jsonl` beside it, with the error, so that it cannot block the ones after it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from . import rest
from .rest import RETRIED_STATUSES, RestError

SPOOL = "record-pending.jsonl"
SPOOL_LOCK = "record-pending.lock"
FILES = "record-pending.files"  # hard links to the files of pending uploads
REJECTED = "record-rejected.jsonl"
INDEX = "record-pending"  # in the workspace: one file per job whose record waits, holding its folder's path
BUSY_SECONDS = 2.0  # the longest one attempt waits for another writer's lock
REFUSAL_SECONDS = 15.0  # after a refusal, this process's writes go to the spool at once for this long

# What a refused write of a store that may take it later says (SQLite's messages, through SQLAlchemy and MLflow)
PASSING = ("database is locked", "database table is locked", "readonly database", "disk i/o error",
           "database or disk is full", "unable to open database file", "temporarily_unavailable")
PASSING_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EAGAIN,
                  errno.EBUSY}

_local = threading.local()  # while this thread writes: the busy timeout of its SQLite sessions, in ms
_told: set[str] = set()  # the job folders whose pending record the user was told of, in this process


def retry_seconds() -> float:
    return float(os.environ.get("MLJOBS_STORE_RETRY_SECONDS", "5"))


def passing(exc: BaseException) -> bool:
    """Whether `exc` is a refusal the store may not make later: asked again, then spooled."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RestError) and (exc.status == 0 or exc.status in RETRIED_STATUSES
                                           or exc.error_code == "TEMPORARILY_UNAVAILABLE"):
            return True
        if isinstance(exc, shutil.Error) or (isinstance(exc, OSError) and exc.errno in PASSING_ERRNOS):
            return True
        if any(text in str(exc).lower() for text in PASSING):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def attempt(write, budget: float):
    """`write()`, asked again with back-off while it fails in passing, until `budget` seconds have gone."""
    deadline = time.monotonic() + budget
    delay = 0.1
    while True:
        remaining = deadline - time.monotonic()
        _local.busy_ms = int(max(0.5, min(BUSY_SECONDS, remaining)) * 1000)
        try:
            with rest.deadline(deadline):
                return write()
        except Exception as exc:
            if not passing(exc) or time.monotonic() + delay > deadline:
                raise
        finally:
            _local.busy_ms = None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def bound_waits(engine) -> None:
    """On this SQLAlchemy engine, while a write is attempted here: SQLite waits `busy_ms` for another writer's lock
    (MLflow sets 20 s on each session), and MLflow's traceback of the refusal is not logged (the one line
    of `JobRecord` says it)."""
    from sqlalchemy import event

    def bounded(connection, cursor, statement, parameters, context, executemany):
        busy = getattr(_local, "busy_ms", None)
        if busy is not None and statement.startswith("PRAGMA busy_timeout"):
            statement = f"PRAGMA busy_timeout = {busy};"
        return statement, parameters

    event.listen(engine, "before_cursor_execute", bounded, retval=True)
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _WhileWriting) for f in logger.filters):
        logger.addFilter(_WhileWriting())


class _WhileWriting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(_local, "busy_ms", None) is None


class Spool:
    """A job folder's pending writes, in order; changed only under its lock (`record-pending.lock`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / SPOOL

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    @contextlib.contextmanager
    def locked(self, wait: bool = True):
        """Hold the spool's lock for the block; without `wait`, yields False at once if another process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / SPOOL_LOCK, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def entries(self) -> list[dict]:
        """The pending writes; a line cut short (a crash as it was appended) is dropped: its write was not done."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def append(self, entry: dict, index: Path) -> None:
        if entry["op"] in ("file", "dir"):
            same = [e for e in self.entries() if (e["op"], e.get("path"), e.get("artifact_path"))
                    == (entry["op"], entry["path"], entry.get("artifact_path"))]
            if same:  # the same upload asked again (./logs while the job runs): what it holds now, in its place
                if same[0].get("copy"):
                    self._link(Path(entry["path"]), Path(same[0]["copy"]))
                return
            entry = {**entry, "copy": self._snapshot(Path(entry["path"]))}
        with open(self.path, "a", encoding="utf-8") as spool:
            spool.write(json.dumps(entry, sort_keys=True) + "\n")
            spool.flush()
            os.fsync(spool.fileno())
        index.mkdir(parents=True, exist_ok=True)
        (index / self.folder.name).write_text(str(self.folder))

    def _snapshot(self, source: Path) -> str | None:
        """Hard links to what an upload reads (a file, or a folder's files), kept until the upload is made; None
        where even a copy cannot be made (the upload then reads `source` as it is then)."""
        target = self.folder / FILES / str(time.time_ns())
        try:
            self._link(source, target)
        except OSError:
            shutil.rmtree(target, ignore_errors=True)
            return None
        return str(target)

    @staticmethod
    def _link(source: Path, target: Path) -> None:
        def link(src, dst):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)

        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, copy_function=link)
        elif source.is_file():
            link(source, target / source.name)

    def keep(self, entries: list[dict], index: Path) -> None:
        """Leave `entries` pending (written whole, then renamed over the spool); none: the spool goes. The links of
        uploads made are removed."""
        kept = {e["copy"] for e in entries if e.get("copy")}
        files = self.folder / FILES
        if files.is_dir():
            for snapshot in files.iterdir():
                if str(snapshot) not in kept:
                    shutil.rmtree(snapshot, ignore_errors=True)
        if not entries:
            self.path.unlink(missing_ok=True)
            shutil.rmtree(files, ignore_errors=True)
            (index / self.folder.name).unlink(missing_ok=True)
            return
        temp = self.path.with_name(SPOOL + ".new")
        with open(temp, "w", encoding="utf-8") as spool:
            spool.writelines(json.dumps(entry, sort_keys=True) + "\n" for entry in entries)
            spool.flush()
            os.fsync(spool.fileno())
        os.replace(temp, self.path)

    def reject(self, entry: dict, exc: BaseException) -> Path:
        path = self.folder / REJECTED
        with open(path, "a", encoding="utf-8") as rejected:
            rejected.write(json.dumps({**entry, "error": _first_line(exc)}, sort_keys=True) + "\n")
        return path


def spool_write(record, entry: dict, exc: BaseException | None) -> None:
    """Keep `entry` (a write of `record` that the store refused, or that waits behind earlier ones) pending."""
    tracker = record.tracker
    spool = Spool(record.folder)
    with spool.locked():
        if spool.pending() and not tracker.refusing():  # written meanwhile, or the store takes writes again
            _replay(tracker, spool, retry_seconds(), remember=True)
        if not spool.pending() and not tracker.refusing():
            try:
                attempt(lambda: record.apply(entry), retry_seconds())
                return
            except Exception as error:
                if not passing(error):
                    raise
                tracker.refused(error)
                exc = error
        try:
            spool.append(entry, tracker.config.home / INDEX)
        except OSError as error:  # a full disk refuses both: say what is lost, in one line
            from ..spec import SubmitError

            raise SubmitError(f"job '{record.name}': the MLflow store refuses writes ({tracker.refusal}) and its "
                              f"folder {spool.folder} cannot keep them either ({error.strerror or error}): this "
                              f"{entry['op']} write of its record is lost") from None
    if str(spool.folder) not in _told:
        _told.add(str(spool.folder))
        why = tracker.refusal or (_first_line(exc) if exc else "it refused an earlier write")
        say(f"mljobs: job '{record.name}': the MLflow store refuses writes ({why}); the job's record waits in "
            f"{spool.path} and the next mljobs command that can write the store writes it")


def replay_pending(tracker, job_dir: str | Path, budget: float | None = None) -> int:
    """Write the pending writes of the job in `job_dir`, in order, to the store (whether this process saw it
    refuse writes or not); how many still wait (0: all written, or none were pending)."""
    spool = Spool(Path(job_dir))
    index = tracker.config.home / INDEX
    if not spool.pending():
        if (index / spool.folder.name).exists():
            with spool.locked():  # a marker left by a process that died after it emptied the spool
                if not spool.pending():
                    (index / spool.folder.name).unlink(missing_ok=True)
        return 0
    with spool.locked():
        return _replay(tracker, spool, retry_seconds() if budget is None else budget, remember=True)[0]


def replay_all(tracker, budget: float = 0.0) -> int:
    """Write every pending record of the workspace (each job's writes in order; one attempt by default, so that a
    command is not held up while the store still refuses: the first refusal ends the round); how many writes
    still wait."""
    index = tracker.config.home / INDEX
    try:
        names = sorted(os.listdir(index))
    except OSError:
        return 0
    left, refused = 0, False
    for name in names:
        try:
            folder = Path((index / name).read_text().strip())
        except OSError:
            continue
        spool = Spool(folder)
        if refused or tracker.refusing():
            left += len(spool.entries())
            continue
        try:
            with spool.locked(wait=False) as held:
                if not held:  # its job's own writer is at it
                    left += 1
                    continue
                if not spool.pending():  # a marker left by a process that died after it emptied the spool
                    (index / name).unlink(missing_ok=True)
                    continue
                still, refused = _replay(tracker, spool, budget, remember=False)
                left += still
        except OSError as exc:  # the job folder is gone or unreadable: nothing of it can be replayed
            say(f"mljobs: cannot replay the pending record in {folder}: {exc.strerror or exc}")
    return left


def _replay(tracker, spool: Spool, budget: float, remember: bool) -> tuple[int, bool]:
    """With the spool's lock held: its writes in order, until one is refused in passing (then, if `remember`,
    this process's writes go to their spools for a while); how many are left, and whether it was refused."""
    from .record import JobRecord

    entries = spool.entries()
    done, rejected, name, refused = 0, 0, None, False
    for entry in entries:
        if entry.get("store") != tracker.config.tracking_uri:  # written for another store: left for it
            break
        record = JobRecord.from_entry(tracker, entry, spool.folder)
        name = record.name
        try:
            attempt(lambda: record.apply(entry, replaying=True), budget)
        except Exception as exc:
            if passing(exc):
                refused = True
                if remember:
                    tracker.refused(exc)
                break
            rejected += 1
            say(f"mljobs: job '{record.name}': the MLflow store rejects a pending write ({_first_line(exc)}); "
                f"it is set aside in {spool.reject(entry, exc)}")
        done += 1
    left = entries[done:]
    if done:
        spool.keep(left, tracker.config.home / INDEX)
    if done and not left and done > rejected:
        say(f"mljobs: job '{name}': its pending record ({done - rejected} writes) is now in the MLflow store")
    return len(left), refused


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
