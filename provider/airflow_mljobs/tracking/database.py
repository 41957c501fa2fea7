"""The embedded store's SQLite file: made once and whole, under a lock, and checked before anything opens it.

MLflow's SqlAlchemyStore creates and migrates an empty database in place, and two processes that open a fresh
workspace at once (eight `mljobs job create` from a shell loop, an Airflow worker's first tasks) migrate it
together and leave it half-migrated for good. Here the store is made by one process at a time (an flock on
`mlflow.db.lock` in the workspace), with MLflow's own SqlAlchemyStore, in a temporary file that is renamed into
place once made and migrated: a store that exists is whole, and a maker that dies leaves no store, only a
temporary file that the next maker removes.

A store that exists is checked with SQLite alone (no MLflow import, about a millisecond): an empty file, a
file that is not SQLite, or one without MLflow's tables is refused with one line that says how to recover,
never silently made again, since its records would be gone without a word. One left half-migrated by a crash
that holds no record at all (what the concurrent first use of earlier versions left) is made again.

A store made by an older MLflow, which lacks tables of the installed one, MLflow would migrate in place in
every process that opens it; `migrate_if_needed` does it in one, under the same lock, after a copy of the store
(`mlflow.db.before-migration`, removed once the migration is done). A migration that fails or is killed leaves
that copy, and the refusal says to put it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..loading import collector_paused
from ..spec import SubmitError

HEADER = b"SQLite format 3\x00"
# Tables every MLflow tracking store has had since its first schema; `alembic_version` is written by the first
# migration. Without them a file is no MLflow store, or one half made.
CORE_TABLES = frozenset({"experiments", "runs", "tags", "params", "metrics", "latest_metrics", "alembic_version"})
MIGRATION_LEFTOVER = "_alembic_tmp_"  # Alembic's copy of a table that a migration rebuilds (SQLite's batch mode)
# Rows a store has the moment it is made, which are no one's records: MLflow's Default experiment and default
# workspace, and the schema's revision
BOOKKEEPING = frozenset({"alembic_version", "workspaces"})
BACKUP = ".before-migration"  # suffix of the copy of a store taken before a migration
LOCK_SECONDS = float(os.environ.get("MLJOBS_STORE_LOCK_SECONDS", "600"))  # a maker that long at work is stuck


class StoreError(SubmitError):
    """The embedded store cannot be used as it is: one line, saying why and how to recover."""


@dataclass(frozen=True)
class Diagnosis:
    state: str  # "whole", "missing", "unused" (half made, no record: made again) or "damaged" (refused)
    why: str = ""


def ensure_store(database: Path, artifact_root: str | None) -> None:
    """Make sure the SQLite store at `database` is whole before anything opens it: made (once) when missing,
    made again when half made and holding nothing; raises StoreError for a store that is damaged."""
    if diagnose(database).state == "whole":
        return
    with store_lock(database):
        found = diagnose(database)  # made, or migrated (a migration's leftovers gone), while this one waited
        if found.state == "whole":
            return
        if found.state == "damaged":
            raise StoreError(refusal(database, found.why))
        make_store(database, artifact_root)
        if found.state == "unused":
            _say(f"mljobs: made the MLflow store {database} again: {found.why}, and it held no record")


def remake_if_unused(database: Path, artifact_root: str | None, why: str) -> bool:
    """Make the store again if it holds no record (a store whose migration stopped half way, which MLflow
    refuses as out of date); False, leaving it alone, when it holds any."""
    with store_lock(database):
        try:
            if _holds_records(database):
                return False
        except sqlite3.Error:
            return False
        make_store(database, artifact_root)
    _say(f"mljobs: made the MLflow store {database} again: {why}, and it held no record")
    return True


def refusal(database: Path, why: str) -> str:
    backup = database.with_name(database.name + BACKUP)
    restore = (f"Put back the copy taken before its migration (mv {backup} {database}; remove {database}-wal and "
               f"{database}-shm first)" if backup.exists() else "Restore it from a backup")
    return (f"the MLflow store {database} {why}. {restore}, or start afresh: move it aside "
            f"(mv {database} {database}.broken; its -wal file too, if any) and run the command again")


def migrate_if_needed(database: Path, artifact_root: str | None) -> None:
    """Before MLflow's store opens the file (MLflow loaded): a store that lacks tables of the installed MLflow is
    migrated here, by one process under the lock, after a copy of it is taken; or made again if it holds no
    record. MLflow would otherwise migrate it in place in every process that opens it, all at once."""
    from mlflow.store.db import utils
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = SqlAlchemyStore._get_or_create_engine(f"sqlite:///{database}")  # the one MLflow's store then uses
    if utils._all_tables_exist(engine):
        return
    with store_lock(database):
        if utils._all_tables_exist(engine):  # migrated by another process while this one waited
            return
        found = diagnose(database)
        if found.state == "damaged":
            raise StoreError(refusal(database, found.why))
        try:
            unused = not _holds_records(database)
        except sqlite3.Error:
            unused = False
        if unused:
            make_store(database, artifact_root)
            _say(f"mljobs: made the MLflow store {database} again: it lacked tables of the installed MLflow, "
                 f"and it held no record")
            return
        backup = database.with_name(database.name + BACKUP)
        _copy(database, backup)
        try:
            with collector_paused(), _quiet("mlflow.store.db.utils", "alembic"):
                utils._initialize_tables(engine)  # MLflow's own: its first tables if missing, then every migration
        except Exception as exc:
            raise StoreError(refusal(database, f"could not be migrated to the installed MLflow's schema "
                                               f"({_first_line(exc)})")) from None
        backup.unlink(missing_ok=True)


def diagnose(database: Path) -> Diagnosis:
    """What state the store is in, read with SQLite alone. A store that cannot be read just now (locked,
    permissions) counts as whole: MLflow's client then reports what stands in the way."""
    try:
        size = database.stat().st_size
    except FileNotFoundError:
        return Diagnosis("missing")
    except OSError:
        return Diagnosis("whole")
    if size == 0:
        return Diagnosis("damaged", "is empty (0 bytes): it was truncated, and its records are gone")
    try:
        with open(database, "rb") as handle:
            head = handle.read(len(HEADER))
    except OSError:
        return Diagnosis("whole")
    if head != HEADER:
        return Diagnosis("damaged", "is not an SQLite database")
    try:
        with _connection(database) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        if _unavailable(exc):
            return Diagnosis("whole")
        return Diagnosis("damaged", f"is damaged ({exc})")
    missing = sorted(CORE_TABLES - tables)
    leftovers = sorted(t for t in tables if t.startswith(MIGRATION_LEFTOVER))
    if not missing and not leftovers:
        return Diagnosis("whole")
    if "alembic_version" not in tables:  # no MLflow migration ever ran here: someone else's database
        return Diagnosis("damaged", f"is not an MLflow store (MLflow's tables are missing: {', '.join(missing)})")
    why = "its creation or migration stopped half way (" + "; ".join(
        part for part in (missing and f"missing tables: {', '.join(missing)}",
                          leftovers and f"leftover tables: {', '.join(leftovers)}") if part) + ")"
    try:
        holds = _holds_records(database)
    except sqlite3.DatabaseError as exc:
        return Diagnosis("whole") if _unavailable(exc) else Diagnosis("damaged", f"is damaged ({exc})")
    return Diagnosis("damaged", why + " and it holds records") if holds else Diagnosis("unused", why)


@contextlib.contextmanager
def store_lock(database: Path):
    """The workspace's lock on making the store (`mlflow.db.lock` beside it), held while the block runs."""
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        lock = open(database.with_name(database.name + ".lock"), "a")
    except OSError as exc:
        raise StoreError(f"cannot create the MLflow store {database}: {exc.strerror or exc}") from None
    with lock:
        deadline = time.monotonic() + LOCK_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(f"another process has been making the MLflow store {database} for "
                                     f"{LOCK_SECONDS:g} s (it holds {lock.name}); stop it, then try again") from None
                time.sleep(0.05)
        yield


def make_store(database: Path, artifact_root: str | None) -> None:
    """Make the store with MLflow's own SqlAlchemyStore (its tables, every migration, the Default experiment)
    in a temporary file, in write-ahead-log mode, then rename it into place. Called with the lock held."""
    folder = database.parent
    for stale in folder.glob(f".{database.name}.making-*"):  # a maker that died: none is at work, the lock is ours
        stale.unlink(missing_ok=True)
    temp = folder / f".{database.name}.making-{os.getpid()}"
    try:
        _build(temp, artifact_root)
        _fsync(temp)
        _forget_engine(database)
        _clear_sidecars(database)
        os.replace(temp, database)
        _fsync(folder)
    except OSError as exc:
        raise StoreError(f"cannot create the MLflow store {database}: {exc.strerror or exc}") from None
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot create the MLflow store {database}: {_first_line(exc)}") from None
    finally:
        for path in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm"), Path(f"{temp}-journal")):
            path.unlink(missing_ok=True)


def _build(temp: Path, artifact_root: str | None) -> None:
    uri = f"sqlite:///{temp}"
    with collector_paused(), _quiet("mlflow.store.db.utils", "alembic"):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(uri, artifact_root or (temp.parent / "artifacts").as_uri())
        SqlAlchemyStore._engine_map.pop(uri, None)
        store.engine.dispose()
    connection = sqlite3.connect(temp)
    try:
        connection.execute("PRAGMA journal_mode=WAL")  # kept in the file; see record._write_ahead_log
    finally:
        connection.close()  # the last connection checkpoints the log into the file and removes it
    if Path(f"{temp}-wal").exists():
        raise StoreError(f"cannot create the MLflow store: its write-ahead log {temp}-wal was not checkpointed")


def _forget_engine(database: Path) -> None:
    """An engine this process holds on the file being replaced would go on using the old one."""
    module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    if module is not None:
        engine = module.SqlAlchemyStore._engine_map.pop(f"sqlite:///{database}", None)
        if engine is not None:
            engine.dispose()


def _clear_sidecars(database: Path) -> None:
    """The -wal and -shm files of a store that is gone, or being replaced, must not meet the new one: SQLite would
    replay that log into it. An index (-shm) is removed; a log that holds commits is moved aside, not lost."""
    Path(f"{database}-shm").unlink(missing_ok=True)
    log = Path(f"{database}-wal")
    try:
        size = log.stat().st_size
    except FileNotFoundError:
        return
    if size == 0 or database.exists():  # a replaced store's log: it held no record (checked before)
        log.unlink(missing_ok=True)
        return
    aside = Path(f"{database}-wal.orphaned-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(log, aside)
    _say(f"mljobs: moved {log} aside to {aside}: it is the write-ahead log of a store that is gone")


def _copy(database: Path, target: Path) -> None:
    """A consistent copy of the store (SQLite's online backup: the write-ahead log's commits included)."""
    temp = target.with_name(target.name + ".partial")
    source, copy = sqlite3.connect(database, timeout=30), sqlite3.connect(temp)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    _fsync(temp)
    os.replace(temp, target)


def _holds_records(database: Path) -> bool:
    """Whether any table holds a row of someone's: anything beyond the Default experiment and the bookkeeping a
    new store has (Alembic's leftover copies count too: a migration's only copy of a table may be there)."""
    with _connection(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                       "AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            base = table[len(MIGRATION_LEFTOVER):] if table.startswith(MIGRATION_LEFTOVER) else table
            if base in BOOKKEEPING:
                continue
            where = " WHERE name != 'Default'" if base == "experiments" else ""
            quoted = table.replace('"', '""')
            if connection.execute(f'SELECT EXISTS (SELECT 1 FROM "{quoted}"{where})').fetchone()[0]:
                return True
    return False


@contextlib.contextmanager
def _connection(database: Path):
    """A connection that never creates the file (`mode=rw`: read-only when the file is write-protected)."""
    connection = sqlite3.connect(f"file:{urllib.parse.quote(str(database))}?mode=rw", uri=True, timeout=2)
    try:
        yield connection
    finally:
        connection.close()


def _unavailable(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("locked", "busy", "unable to open", "readonly", "disk i/o"))


@contextlib.contextmanager
def _quiet(*names: str):
    """MLflow's and Alembic's chatter while they make a store ("Creating initial MLflow database tables...")."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
