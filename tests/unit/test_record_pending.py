"""The parts of a store fault that need no MLflow: which refusals pass, asking again with back-off, the spool of a
job's pending writes, and what a store file's first bytes and tables say about it."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time

import pytest

from airflow_mljobs.tracking.database import diagnose
from airflow_mljobs.tracking.pending import INDEX, Spool, attempt, passing
from airflow_mljobs.tracking.rest import RestError


def _chained(outer: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise outer from inner
    except Exception as exc:
        return exc


@pytest.mark.parametrize("exc, expected", [
    (sqlite3.OperationalError("database is locked"), True),
    (sqlite3.OperationalError("attempt to write a readonly database"), True),
    (sqlite3.OperationalError("disk I/O error"), True),
    (sqlite3.OperationalError("database or disk is full"), True),
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (PermissionError(errno.EACCES, "Permission denied"), True),
    (RestError("cannot reach the MLflow tracking server", status=0), True),
    (RestError("TEMPORARILY_UNAVAILABLE: busy", "TEMPORARILY_UNAVAILABLE", 503), True),
    (sqlite3.IntegrityError("UNIQUE constraint failed: params.key"), False),
    (sqlite3.OperationalError("no such table: runs"), False),
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
    (RestError("INVALID_PARAMETER_VALUE: no", "INVALID_PARAMETER_VALUE", 400), False),
    (ValueError("bad"), False),
])
def test_which_refusals_pass(exc, expected):
    assert passing(exc) is expected


def test_a_refusal_wrapped_by_mlflow_passes_through_its_cause():
    wrapped = _chained(RuntimeError("(sqlalchemy.exc.OperationalError) see the cause"),
                       sqlite3.OperationalError("database is locked"))
    assert passing(wrapped)


def test_a_write_is_asked_again_while_it_fails_in_passing():
    calls = []

    def write():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "written"

    assert attempt(write, 5) == "written" and len(calls) == 3
    assert 0.25 < calls[-1] - calls[0] < 1.5  # 0.1 s, then 0.2 s


def test_a_write_that_fails_for_good_is_not_asked_again():
    calls = []

    def write():
        calls.append(1)
        raise sqlite3.IntegrityError("UNIQUE constraint failed")

    with pytest.raises(sqlite3.IntegrityError):
        attempt(write, 5)
    assert calls == [1]


def test_asking_again_stops_when_the_budget_is_spent():
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError):
        attempt(lambda: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")), 0.5)
    assert time.monotonic() - started < 1.2


def test_the_spool_keeps_writes_in_order_and_links_what_uploads_read(tmp_path):
    index = tmp_path / INDEX
    spool = Spool(tmp_path / "jobs" / "a")
    logs = tmp_path / "jobs" / "a" / "wd" / "logs"
    logs.mkdir(parents=True)
    (logs / "1.txt").write_text("one")
    running, completed = {"op": "status", "status": "Running"}, {"op": "status", "status": "Completed"}
    upload = {"op": "dir", "path": str(logs), "artifact_path": "logs"}
    with spool.locked():
        spool.append(running, index)
        spool.append(upload, index)
        (logs / "2.txt").write_text("two")
        spool.append(upload, index)  # asked again with more in it: one upload, of what the folder holds now
        spool.append(completed, index)
    entries = spool.entries()
    assert [e["op"] for e in entries] == ["status", "dir", "status"] and spool.pending()
    copy = entries[1]["copy"]
    assert os.listdir(tmp_path / "jobs" / "a" / "record-pending.files") == [os.path.basename(copy)]
    (logs / "1.txt").unlink()  # the folder an upload read may go: its files are kept
    assert sorted(os.listdir(copy)) == ["1.txt", "2.txt"]
    assert (index / "a").read_text() == str(spool.folder)
    with open(spool.path, "a") as cut:
        cut.write('{"op": "status", "sta')  # a crash while appending: that write was never made
    assert spool.entries() == entries
    with spool.locked():
        spool.keep(entries[2:], index)  # the upload made: its links go
    assert [json.loads(line) for line in spool.path.read_text().splitlines()] == [completed]
    assert not os.path.exists(copy)
    with spool.locked():
        spool.keep([], index)
    assert not spool.pending() and not spool.path.exists() and not (index / "a").exists()
    assert not (tmp_path / "jobs" / "a" / "record-pending.files").exists()


def test_what_a_store_file_says_about_itself(tmp_path):
    database = tmp_path / "mlflow.db"
    assert diagnose(database).state == "missing"
    database.write_bytes(b"")
    assert diagnose(database).state == "damaged" and "0 bytes" in diagnose(database).why
    database.write_bytes(b"PK\x03\x04 a zip file, say" * 10)
    assert "not an SQLite database" in diagnose(database).why
    database.unlink()
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    assert "not an MLflow store" in diagnose(database).why
    with sqlite3.connect(database) as db:  # MLflow's first migration ran, and stopped: no record anywhere
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("CREATE TABLE experiments (experiment_id INTEGER, name TEXT)")
        db.execute("INSERT INTO experiments VALUES (0, 'Default')")
    assert diagnose(database).state == "unused"
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO notes VALUES ('mine')")
    found = diagnose(database)
    assert found.state == "damaged" and "holds records" in found.why


def test_a_bounded_write_to_a_busy_server_gives_up_at_its_deadline():
    """A tracking server that answers 503 (its store locked): a write bounded by `rest.deadline` stops asking when
    its budget is spent, instead of after five tries; the error passes, so the write is kept pending."""
    import http.server
    import threading

    from airflow_mljobs.tracking import rest

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_error(503, "database is locked")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = rest.RestClient(f"http://127.0.0.1:{server.server_address[1]}")
        started = time.monotonic()
        with pytest.raises(RestError) as refused:
            with rest.deadline(time.monotonic() + 0.2):
                client.log_batch("run", tags=[rest.KeyValue("k", "v")])
        assert time.monotonic() - started < 1.0 and passing(refused.value)
    finally:
        server.shutdown()
        server.server_close()
