"""The embedded store under faults, with the real SQLite store and real `mljobs` processes: many first commands at
once on a fresh workspace, a store truncated, damaged or left half-migrated, and a store that refuses writes
for a while (another connection holds SQLite's exclusive lock) and then takes them again."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from airflow_mljobs.spec import SubmitError
from airflow_mljobs.tracking import ensure_store, open_tracker, replay_pending, resolve_tracking
from airflow_mljobs.tracking import tags as T

MLJOBS = str(Path(sys.executable).parent / "mljobs")

pytestmark = pytest.mark.timeout(180)


def _env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "MLJOBS_HOME": str(home), **extra}


def _mljobs(home: Path, *args: str, timeout: float = 120, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([MLJOBS, *args], capture_output=True, text=True, env=_env(home, **extra), timeout=timeout)


def _at_once(home: Path, commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Start every command, then wait for all (each bounded in time)."""
    processes = [subprocess.Popen([MLJOBS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=_env(home), cwd=cwd) for args in commands]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=150)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.fixture(scope="session")
def made_store(tmp_path_factory) -> Path:
    """A store made once (as any first command makes it), copied into the workspaces of tests that are not about
    making one: each copy spares a test MLflow's migrations."""
    config = resolve_tracking(tmp_path_factory.mktemp("made"))
    ensure_store(config.database, config.artifact_root)
    return config.database


@pytest.fixture
def home(tmp_path, made_store, monkeypatch) -> Path:
    """A workspace whose store exists, whole (a copy of `made_store`)."""
    import shutil

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    shutil.copyfile(made_store, workspace / "mlflow.db")
    return workspace


def _latest_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _revision(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


# -- 1. concurrent first use -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_eight_job_creates_at_once_on_a_fresh_workspace_all_complete(tmp_path):
    home = tmp_path / "ws"
    (tmp_path / "job.yml").write_text("command: echo hello\n")
    names = [f"first-{i}-{uuid.uuid4().hex[:6]}" for i in range(8)]
    results = _at_once(home, [["job", "create", "-f", "job.yml", "-n", name, "--stream"] for name in names], tmp_path)
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Status: Completed" in result.stdout and "Traceback" not in result.stderr
    assert _revision(home / "mlflow.db") == _latest_revision()
    listed = _mljobs(home, "job", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(job["name"] for job in json.loads(listed.stdout) if job["status"] == "Completed") == sorted(names)
    assert not list(home.glob(".mlflow.db.making-*"))  # no temporary store left behind


@pytest.mark.slow
def test_sixteen_first_commands_at_once_make_one_whole_store(tmp_path, monkeypatch):
    home = tmp_path / "ws"
    results = _at_once(home, [["job", "list"]] * 16, tmp_path)
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "_alembic_tmp" not in result.stderr and "Traceback" not in result.stderr
    assert _revision(home / "mlflow.db") == _latest_revision()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracker = open_tracker(resolve_tracking(home))  # and the store works: a run is written and found
    record = tracker.create_job_run("after", "after-the-crowd", {})
    assert tracker.find_job("after-the-crowd").info.run_id == record.run_id


def _half_migrated(database: Path, revision: str, leftover: bool) -> None:
    """What a migration stopped half way leaves: MLflow's first tables, its migrations up to `revision`, and
    (`leftover`) the copy Alembic makes of a table it rebuilds."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config, create_sqlalchemy_engine
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    uri = f"sqlite:///{database}"
    engine = create_sqlalchemy_engine(uri)
    try:
        InitialBase.metadata.create_all(engine)
        config = _get_alembic_config(uri)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        if leftover:
            with engine.begin() as connection:
                connection.exec_driver_sql("CREATE TABLE _alembic_tmp_experiments AS SELECT * FROM experiments")
    finally:
        engine.dispose()


def test_a_half_migrated_store_that_holds_nothing_is_made_again(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    _half_migrated(home / "mlflow.db", "451aebb31d03", leftover=True)  # what two first commands at once left
    capfd.readouterr()
    tracker = open_tracker(resolve_tracking(home))
    err = capfd.readouterr().err
    assert "made the MLflow store" in err and "held no record" in err and "Traceback" not in err
    assert tracker.find_job("nothing") is None and _revision(home / "mlflow.db") == _latest_revision()

    other = tmp_path / "other"  # every table there, an older revision, nothing recorded: MLflow calls it out of date
    other.mkdir()
    _half_migrated(other / "mlflow.db", "89d4b8295536", leftover=False)
    tracker = open_tracker(resolve_tracking(other))
    assert "made the MLflow store" in capfd.readouterr().err
    assert tracker.find_job("nothing") is None and _revision(other / "mlflow.db") == _latest_revision()


def test_an_older_store_with_records_is_migrated_under_the_lock_and_keeps_them(tmp_path, monkeypatch):
    """A store of an older MLflow (tables missing), with records: migrated by MLflow's own migrations under the
    workspace's lock, after a copy of it is taken; its records are kept, and the copy goes once it is done."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    database = home / "mlflow.db"
    _half_migrated(database, "89d4b8295536", leftover=False)
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (7, 'mine', 'active')")
    tracker = open_tracker(resolve_tracking(home))
    assert tracker.list_jobs("mine") == []
    assert _revision(database) == _latest_revision()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT name FROM experiments WHERE experiment_id = 7").fetchone() == ("mine",)
    assert not (home / "mlflow.db.before-migration").exists()


def test_a_half_migrated_store_that_holds_records_is_refused_and_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    database = home / "mlflow.db"
    _half_migrated(database, "451aebb31d03", leftover=True)
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (7, 'mine', 'active')")
    before = database.read_bytes()
    with pytest.raises(SubmitError) as refused:
        open_tracker(resolve_tracking(home))
    message = str(refused.value)
    assert "stopped half way" in message and "holds records" in message and f"mv {database}" in message
    assert "\n" not in message and database.read_bytes() == before


# -- 2. an empty or damaged store ---------------------------------------------------------------------------------
def test_a_store_truncated_to_nothing_is_refused_in_one_line_not_made_again(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "mlflow.db").write_bytes(b"")
    result = _mljobs(home, "job", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert "is empty (0 bytes)" in result.stderr and f"mv {home / 'mlflow.db'} " in result.stderr
    assert (home / "mlflow.db").stat().st_size == 0  # left as it was, for the user to look at


@pytest.mark.parametrize("damage", ["not-sqlite", "someone-elses", "cut-short"])
def test_a_damaged_store_is_refused_with_how_to_recover(tmp_path, monkeypatch, damage, made_store):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    database = home / "mlflow.db"
    if damage == "not-sqlite":
        database.write_text("these are not the records you are looking for\n" * 10)
    elif damage == "someone-elses":
        with sqlite3.connect(database) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
            db.execute("INSERT INTO notes VALUES ('mine')")
    else:  # a whole store, cut short after its first pages (its header still says SQLite)
        database.write_bytes(made_store.read_bytes()[:8192] + b"\0" * 8192)
    before = database.read_bytes()
    with pytest.raises(SubmitError) as refused:
        open_tracker(resolve_tracking(home))
    message = str(refused.value)
    assert "\n" not in message and "Restore it from a backup" in message and f"mv {database} " in message
    assert database.read_bytes() == before


def test_a_maker_that_died_leaves_no_store_and_a_lost_stores_log_is_kept_aside(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    (home / ".mlflow.db.making-999999").write_bytes(b"SQLite format 3\0 half written")  # a maker killed midway
    (home / "mlflow.db-wal").write_bytes(b"commits of a store that was moved away")
    tracker = open_tracker(resolve_tracking(home))
    tracker.create_job_run("e", "works", {})
    assert not list(home.glob(".mlflow.db.making-*"))
    kept = list(home.glob("mlflow.db-wal.orphaned-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"commits of a store that was moved away"


# -- 3. a store that refuses writes for a while ----------------------------------------------------------------------
def _hold_exclusive(database: Path):
    """A second connection that holds SQLite's exclusive lock: every write waits, then fails ("locked")."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=10)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_writes_refused_for_a_while_wait_in_the_job_folder_and_are_replayed_in_order(home, monkeypatch, capfd):
    monkeypatch.setenv("MLJOBS_STORE_RETRY_SECONDS", "1")
    config = resolve_tracking(home)
    tracker = open_tracker(config)
    record = tracker.create_job_run("faults", "refused", {"kept": "yes"})
    record.folder.mkdir(parents=True)
    outputs = record.folder / ".upload-scratch"  # an upload may read a temporary folder, gone once it returns
    outputs.mkdir(parents=True)
    (outputs / "model.txt").write_text("weights")
    logs = record.folder / "wd" / "logs"
    logs.mkdir(parents=True)
    (logs / "epoch-1.txt").write_text("1")
    capfd.readouterr()

    holder = _hold_exclusive(config.database)
    try:
        started = time.monotonic()
        assert record.set_status("Running", params={"inputs.lr": "0.1"})
        first = time.monotonic() - started
        record.log_dir(logs, "logs")
        (logs / "epoch-2.txt").write_text("2")
        record.log_dir(logs, "logs")  # ./logs again, as they are uploaded every 10 s while the job runs
        record.log_dir(outputs, "outputs")
        import shutil

        shutil.rmtree(outputs)
        record.set_tags({"mljobs.note": "written later"})
        assert record.set_status("Completed", exit_code=0, current="Running")
        assert record.set_status("Canceled", reason="too late")  # a second end: pending, never over the first
        rest = time.monotonic() - started - first
        assert record.status() == "Preparing"  # nothing written yet (reads go on: the store is in WAL mode)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 0.9 < first < 6 and rest < 1  # retried about a second, then the process stops waiting for a while
    err = capfd.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "refuses writes (database is locked)" in err and "record-pending.jsonl" in err
    spool = record.folder / "record-pending.jsonl"
    assert [json.loads(line)["op"] for line in spool.read_text().splitlines()] == ["status", "dir", "dir", "tags",
                                                                                   "status", "status"]
    assert (home / "record-pending" / "refused").read_text() == str(record.folder)

    assert replay_pending(tracker, record.folder) == 0
    run = tracker.run(record.run_id)
    assert run.data.tags[T.STATUS] == "Completed" and run.data.tags[T.EXIT_CODE] == "0"
    assert T.REASON not in run.data.tags and run.info.status == "FINISHED"  # the first end, and only it
    assert run.data.params == {"inputs.lr": "0.1"} and run.data.tags["mljobs.note"] == "written later"
    assert record.artifacts("outputs") == ["outputs/model.txt"]
    assert record.artifacts("logs") == ["logs/epoch-1.txt", "logs/epoch-2.txt"]
    assert not spool.exists() and not (home / "record-pending" / "refused").exists()
    assert not (record.folder / "record-pending.files").exists()
    assert "pending record (6 writes) is now in the MLflow store" in capfd.readouterr().err


def test_a_write_the_store_rejects_for_good_is_raised_not_kept(home):
    """Only a passing refusal is kept pending: a write the store rejects (here a trigger) fails as before."""
    config = resolve_tracking(home)
    tracker = open_tracker(config)
    record = tracker.create_job_run("faults", "rejected", {})
    with sqlite3.connect(config.database) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON params WHEN NEW.key = 'x' "
                   "BEGIN SELECT RAISE(FAIL, 'no x here'); END")
    with pytest.raises(Exception, match="no x here"):
        record.set_tags({}, params={"x": "1"})
    assert not record.pending() and not (home / "record-pending").exists()


HOLDER = textwrap.dedent("""
    import os, sqlite3, sys, time
    database, seconds, marker = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    holder = sqlite3.connect(database, isolation_level=None, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    with open(marker, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(seconds)
    holder.execute("ROLLBACK")
""")


@pytest.mark.slow
def test_a_job_whose_end_the_store_refuses_completes_and_the_next_command_writes_it(tmp_path):
    """The job's own command leaves a process that locks the store for 4 s as it exits: the CLI retries its
    writes for a second, keeps them in the job folder, says so in one line and exits 0; the next command, once the
    lock is gone, writes them, and nothing is lost."""
    home = tmp_path / "ws"
    (tmp_path / "hold.py").write_text(HOLDER)
    marker = tmp_path / "holding"
    (tmp_path / "job.yml").write_text(textwrap.dedent(f"""
        command: >-
          python -c "import subprocess, sys, time, os;
          subprocess.Popen([sys.executable, '{tmp_path / 'hold.py'}', '{home / 'mlflow.db'}', '4', '{marker}'],
          start_new_session=True);
          [time.sleep(0.05) for _ in range(200) if not os.path.exists('{marker}')];
          print('trained')"
    """).lstrip())
    name = f"locked-{uuid.uuid4().hex[:6]}"
    try:
        created = _mljobs(home, "job", "create", "-f", str(tmp_path / "job.yml"), "-n", name, "--stream",
                          MLJOBS_STORE_RETRY_SECONDS="1")
        assert created.returncode == 0, created.stdout + created.stderr
        assert "trained" in created.stdout and "Status: Completed" in created.stdout
        assert "Traceback" not in created.stderr
        told = [line for line in created.stderr.splitlines() if line.startswith("mljobs:")]
        assert len(told) == 1 and "database is locked" in told[0] and "record-pending.jsonl" in told[0], created.stderr
        assert (home / "jobs" / name / "record-pending.jsonl").is_file()
    finally:
        _wait_gone(marker)
    shown = _mljobs(home, "job", "show", "-n", name, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["status"] == "Completed" and info["exit_code"] == 0
    assert "is now in the MLflow store" in shown.stderr
    assert not (home / "jobs" / name / "record-pending.jsonl").exists()
    with sqlite3.connect(home / "mlflow.db") as db:
        assert db.execute("SELECT status FROM runs WHERE name = ?", (name,)).fetchone()[0] == "FINISHED"


def _wait_gone(marker: Path, seconds: float = 20) -> None:
    """Wait for the lock holder the job left (bounded), so that no process outlives the test."""
    import psutil

    if not marker.exists():
        return
    try:
        holder = psutil.Process(int(marker.read_text()))
        holder.wait(timeout=seconds)
    except (psutil.NoSuchProcess, ValueError):
        pass
    except psutil.TimeoutExpired:
        holder.kill()
