"""Command jobs on the local backend, recorded in a real MLflow store."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from airflow_mljobs.engine import Engine
from airflow_mljobs.spec import SpecError, SubmitError
from airflow_mljobs.tracking import tags as T

LOGGING_SCRIPT = """
import json, os, sys
import mlflow
mlflow.log_param("alpha", sys.argv[1])
for step in range(3):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
open("outputs/result.json", "w").write(json.dumps({"ok": True}))
os.makedirs(os.environ["AZURE_ML_OUTPUT_model"], exist_ok=True)
open(os.path.join(os.environ["AZURE_ML_OUTPUT_model"], "weights.txt"), "w").write("w")
print("env", os.environ["AZURE_ML_INPUT_alpha"], os.environ["MLFLOW_EXPERIMENT_ID"])
print("stderr line", file=sys.stderr)
"""


def run(engine: Engine, path, name, overrides=None, **kwargs):
    document = engine.load(path, overrides)
    submission = engine.submit(document, name=name, **kwargs)
    lines = []
    outcome = engine.follow(submission, lines.append)
    return engine.finalize(submission, outcome), "".join(lines)


def test_metrics_params_tags_outputs_and_logs(engine, project, unique):
    path = project("""
        command: python train.py ${{inputs.alpha}}
        code: src
        inputs: {alpha: 0.5}
        outputs: {model: }
        tags: {team: vision}
        description: A test job.
    """, {"src/train.py": LOGGING_SCRIPT, "src/notes.tmp": "scratch", "src/.amlignore": "*.tmp\n"})
    name = unique()
    result, log = run(engine, path, name)
    assert result.status == "Completed", log
    assert result.metrics == {"loss": pytest.approx(1 / 3)}
    run_ = engine.tracker.client.get_run(result.run_id)
    assert run_.info.run_name == name and run_.info.status == "FINISHED"
    assert run_.data.params["alpha"] == "0.5" and run_.data.params["inputs.alpha"] == "0.5"
    tags = run_.data.tags
    assert tags[T.JOB_NAME] == name and tags[T.STATUS] == "Completed" and tags[T.JOB_TYPE] == "command"
    assert tags[T.COMPUTE] == "local" and tags[T.BACKEND] == "local" and tags["team"] == "vision"
    assert tags["mlflow.note.content"] == "A test job."
    assert [m.value for m in engine.tracker.client.get_metric_history(result.run_id, "loss")] == [1.0, 0.5, pytest.approx(1 / 3)]
    record = engine.tracker.record(run_)
    assert set(record.artifacts()) >= {"job.yml", "outputs", "user_logs", "named-outputs"}
    assert record.artifacts("named-outputs/model") == ["named-outputs/model/weights.txt"]
    assert record.artifacts("user_logs") == ["user_logs/std_log.txt"]
    assert "stderr line" in log and f"env 0.5 {result.experiment_id}" in log
    experiment = engine.tracker.client.get_experiment(result.experiment_id)
    assert experiment.name == path.parent.name  # the default: the YAML's folder
    snapshot = engine.job_dir(name) / "wd"
    assert (snapshot / "train.py").is_file() and not (snapshot / "notes.tmp").exists()


def test_the_embedded_store_is_in_write_ahead_log_mode(engine, project, unique, workspace):
    """The engine, the workspace's tracking server and jobs' own mlflow calls write the one SQLite file."""
    import sqlite3

    path = project("""
        command: python -c "import mlflow; [mlflow.log_metric('m', i, step=i) for i in range(20)]"
    """)
    result, log = run(engine, path, unique())
    assert result.status == "Completed", log
    with sqlite3.connect(workspace / "mlflow.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [m.value for m in engine.tracker.client.get_metric_history(result.run_id, "m")] == list(range(20))
    with engine.tracker.client._tracking_client.store.engine.connect() as connection:  # the engine's own writes
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: synced at checkpoints


def test_git_provenance(engine, project, unique, tmp_path):
    import subprocess

    path = project("command: echo hi\ncode: .\n", {"README": "x"})
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x"],
                 ["remote", "add", "origin", "https://git.invalid/team/repo.git"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True)
    (tmp_path / "README").write_text("changed")
    result, _ = run(engine, path, unique())
    tags = engine.tracker.client.get_run(result.run_id).data.tags
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://git.invalid/team/repo.git"
    assert tags["mljobs.git.dirty"] == "true"


def test_a_finalizer_killed_midway_is_taken_over_by_the_next(engine, project, unique, workspace):
    """A process that finalizes a job (uploading large outputs) is killed: the next `finalize` (a retry's, or
    `mljobs job stream`'s) does not wait for it, records the job's end once, and returns its result."""
    import os
    import signal
    import subprocess
    import sys

    path = project("""
        command: >-
          python -c "import os; os.makedirs('outputs', exist_ok=True);
          [open(f'outputs/part{i}.bin', 'wb').write(os.urandom(1 << 22)) for i in range(64)]"
    """)
    name = unique()
    submission = engine.submit(engine.load(path), name=name)
    outcome = engine.follow(submission)
    assert outcome.status == "Completed"
    finalizer = subprocess.Popen(
        [sys.executable, "-c", "import sys; from airflow_mljobs.engine import Engine; engine = Engine(home=sys.argv[1]); "
         "engine.finalize(engine.attach(sys.argv[2]))", str(workspace), name],
        env={**os.environ, "MLJOBS_HOME": str(workspace)})
    mark = submission.job_dir / "finalizing"
    deadline = time.time() + 60
    while time.time() < deadline and not (mark.is_file() and mark.read_text()):
        time.sleep(0.002)
    finalizer.send_signal(signal.SIGKILL)  # in the middle of its uploads (256 MB)
    finalizer.wait(10)
    assert not (submission.job_dir / "result.json").exists(), "killed before it finished"
    started = time.time()
    result = engine.finalize(submission, outcome)
    assert time.time() - started < 60
    assert result.status == "Completed"
    run = engine.tracker.run(result.run_id)
    assert run.data.tags[T.STATUS] == "Completed" and run.info.status == "FINISHED"
    assert len(engine.tracker.record(run).artifacts("outputs")) == 64
    assert engine.finalize(submission, outcome) == result  # read back, not written again
    assert mark.read_text().count("\n") == 2  # two finalizers ran: the killed one and the one that took over


def test_a_finalizer_that_must_not_wait_leaves_the_job_to_the_one_at_work(engine, project, unique):
    """While one finalizer uploads a job's outputs, another that must not wait (Airflow's `on_kill`, which runs
    in a signal handler over the code it interrupted) returns at once; one that may wait gets the same result."""
    path = project("""
        command: >-
          python -c "import os; os.makedirs('outputs', exist_ok=True);
          [open(f'outputs/part{i}.bin', 'wb').write(os.urandom(1 << 22)) for i in range(64)]"
    """)
    submission = engine.submit(engine.load(path), name=unique())
    outcome = engine.follow(submission)
    results = {}
    worker = threading.Thread(target=lambda: results.update(first=engine.finalize(submission, outcome)))
    worker.start()
    mark = submission.job_dir / "finalizing"
    deadline = time.time() + 30
    while time.time() < deadline and not (mark.is_file() and mark.read_text()):
        time.sleep(0.001)
    started = time.time()
    assert engine.finalize(submission, outcome, wait=False) is None
    assert time.time() - started < 1
    second = engine.finalize(submission, outcome)  # waits for the first, then reads its result
    worker.join(60)
    assert second == results["first"] and second.status == "Completed"


def test_logs_folder_is_uploaded_while_the_job_runs(engine, project, unique, monkeypatch):
    monkeypatch.setattr("airflow_mljobs.engine.follow.LOG_UPLOAD_SECONDS", 0.2)
    path = project("""
        command: >-
          mkdir -p logs && echo step1 > logs/progress.txt &&
          while [ ! -f go ]; do sleep 0.1; done; echo done
    """)
    name = unique()
    submission = engine.submit(engine.load(path), name=name)
    thread = threading.Thread(target=lambda: engine.follow(submission))
    thread.start()
    record = engine.tracker.record(engine.tracker.client.get_run(submission.run_id))
    deadline = time.time() + 20
    while time.time() < deadline and "logs/progress.txt" not in record.artifacts("logs"):
        time.sleep(0.1)
    assert "logs/progress.txt" in record.artifacts("logs")
    assert record.status() == "Running"
    (engine.job_dir(name) / "wd" / "go").write_text("")
    thread.join(timeout=30)
    assert engine.finalize(submission).status == "Completed"


def test_url_inputs_are_downloaded_with_retries_into_a_cache(engine, project, unique, http_files):
    http_files["files"]["/data/iris.csv"] = b"a,b\n1,2\n"
    http_files["fail_first"]["/data/iris.csv"] = 2
    url = f"{http_files['url']}/data/iris.csv?token=1"
    path = project(f"""
        command: cat ${{{{inputs.iris}}}} && test -L ${{{{inputs.iris}}}}
        inputs:
          iris: {{type: uri_file, path: "{url}"}}
    """)
    result, log = run(engine, path, unique())
    assert result.status == "Completed", log
    assert "1,2" in log
    assert http_files["hits"].count("/data/iris.csv") == 3
    second, _ = run(engine, path, unique())
    assert second.status == "Completed"
    assert http_files["hits"].count("/data/iris.csv") == 3  # served from the cache


def test_download_mode_copies_and_mount_mode_links(engine, project, unique):
    path = project("""
        command: test -L ${{inputs.linked}} && test ! -L ${{inputs.copied}} && cat ${{inputs.copied}}/x.txt
        inputs:
          linked: {type: uri_folder, path: data}
          copied: {type: uri_folder, path: data, mode: download}
    """, {"data/x.txt": "payload"})
    result, log = run(engine, path, unique())
    assert result.status == "Completed" and "payload" in log


def test_mlflow_uri_input_from_an_earlier_job(engine, project, unique):
    first, _ = run(engine, project("command: mkdir -p outputs && echo 41 > outputs/answer.txt\n", name="a.yml"),
                   unique())
    path = project(f"""
        command: cat ${{{{inputs.prev}}}}/answer.txt
        inputs:
          prev: {{type: uri_folder, path: "runs:/{first.run_id}/outputs"}}
    """, name="b.yml")
    result, log = run(engine, path, unique())
    assert result.status == "Completed" and "41" in log


@pytest.mark.parametrize("yaml_text, files, message", [
    ("command: cat ${{inputs.d}}\ninputs: {d: {type: uri_file, path: missing.csv}}\n", {},
     r"job.yml:2:36: error: inputs.d.path: \S+/missing.csv does not exist"),
    ("command: ls\ncode: nowhere\n", {}, r"job.yml:2:7: error: code: \S+/nowhere does not exist"),
    ("command: cat ${{inputs.d}}\ninputs: {d: {type: uri_file, path: folder}}\n", {"folder/x": "1"},
     r"job.yml:2:36: error: inputs.d.path: \S+/folder is a folder, and the input is a uri_file"),
])
def test_bad_inputs_leave_no_half_made_job(engine, project, unique, yaml_text, files, message):
    """Found before anything is made or recorded, and said where the YAML says it."""
    path = project(yaml_text, files)
    name = unique()
    with pytest.raises(SpecError, match=message):
        engine.submit(engine.load(path), name=name)
    assert not engine.job_dir(name).exists()
    assert engine.tracker.find_job(name) is None


def test_unwritable_workspace(project, unique, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "ws"
    home.mkdir()
    (home / "jobs").write_text("a file where the job folders should go")
    engine = Engine(home=home)
    name = unique()
    with pytest.raises(SubmitError, match="cannot create the job folder .*: Not a directory"):
        engine.submit(engine.load(project("command: echo\n")), name=name)
    assert engine.tracker.find_job(name) is None


def test_unusable_tracking_store_is_a_clear_error(project, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(SubmitError, match="cannot open the MLflow tracking store"):
        Engine(home=blocker / "ws").submit(Engine(home=tmp_path).load(project("command: echo\n")))


def test_names_are_unique_and_resubmitting_a_running_job_attaches(engine, project, unique):
    path = project("command: while [ ! -f go ]; do sleep 0.1; done\n")
    name = unique()
    first = engine.submit(engine.load(path), name=name)
    again = engine.submit(engine.load(path), name=name)
    assert again.reattached and again.run_id == first.run_id
    (engine.job_dir(name) / "wd" / "go").write_text("")
    assert engine.wait(again).status == "Completed"
    with pytest.raises(SubmitError, match="already ran \\(Completed\\)"):
        engine.submit(engine.load(path), name=name)


def test_a_job_whose_running_status_cannot_be_written_is_stopped(tmp_path, project, unique, monkeypatch):
    """The engine writes Running while the job starts; a store that refuses that write (here a trigger in the
    real SQLite store) fails the submission, and the job it started does not go on running."""
    import sqlite3

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    engine = Engine(home=tmp_path / "ws")
    engine.tracker  # the store exists from here on
    with sqlite3.connect(tmp_path / "ws" / "mlflow.db") as db:
        for event in ("INSERT", "UPDATE"):
            db.execute(f"CREATE TRIGGER refuse_running_{event.lower()} BEFORE {event} ON tags "
                       "WHEN NEW.key = 'mljobs.status' AND NEW.value = 'Running' "
                       "BEGIN SELECT RAISE(ABORT, 'the store refuses Running'); END")
    marker = unique("refused")
    path = project(f"command: sleep 300 # {marker}\n")
    with pytest.raises(SubmitError, match="failed before it started"):
        engine.submit(engine.load(path), name=marker)
    time.sleep(0.5)
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    tags = engine.tracker.find_job(marker).data.tags
    assert tags[T.STATUS] == "Failed" and tags[T.REASON].startswith("could not start: ")  # and what the store said


def test_in_the_embedded_store_a_name_is_taken_by_its_job_folder(engine, project, unique):
    import shutil

    path, name = project("command: echo\n"), unique()
    first = engine.wait(engine.submit(engine.load(path), name=name))
    shutil.rmtree(engine.job_dir(name))  # the folder is the claim: without it the name is free again
    second = engine.wait(engine.submit(engine.load(path), name=name))
    assert first.status == second.status == "Completed" and first.run_id != second.run_id
    with pytest.raises(SubmitError, match="already ran"):
        engine.submit(engine.load(path), name=name)


def test_generated_names(engine, project):
    submission = engine.submit(engine.load(project("command: echo\n")))
    assert submission.name.count("_") == 2 and len(submission.name.rsplit("_", 1)[1]) == 8
    assert engine.wait(submission).status == "Completed"


def test_snapshot_limit(engine, project, unique, monkeypatch):
    monkeypatch.setattr("airflow_mljobs.staging.SNAPSHOT_MAX_FILES", 3)
    path = project("command: ls\ncode: src\n", {f"src/f{i}.txt": "x" for i in range(5)})
    with pytest.raises(SubmitError, match="over the snapshot limit"):
        engine.submit(engine.load(path), name=unique())


def test_distributed_pytorch_env_on_local(engine, project, unique):
    path = project("""
        command: echo "rank=$RANK local=$LOCAL_RANK node=$NODE_RANK world=$WORLD_SIZE master=$MASTER_ADDR"
        distribution: {type: pytorch, process_count_per_instance: 2}
        resources: {instance_count: 2}
    """)
    result, log = run(engine, path, unique())
    assert result.status == "Completed"
    for rank in range(4):
        assert f"[rank {rank}] rank={rank} local={rank % 2} node={rank // 2} world=4 master=127.0.0.1" in log


def test_download_layout(engine, project, unique, tmp_path):
    path = project("""
        command: mkdir -p outputs && echo a > outputs/a.txt && echo m > ${{outputs.model}}/m.txt
        outputs: {model: , other: }
    """)
    name = unique()
    result, _ = run(engine, path, name)
    assert result.status == "Completed"
    default = tmp_path / "d1"
    engine.download(name, default)
    assert (default / "artifacts" / "outputs" / "a.txt").read_text() == "a\n"
    assert (default / "artifacts" / "user_logs" / "std_log.txt").is_file()
    assert not (default / "named-outputs").exists()
    one = tmp_path / "d2"
    engine.download(name, one, output_name="model")
    assert (one / "named-outputs" / "model" / "m.txt").read_text() == "m\n"
    everything = tmp_path / "d3"
    engine.download(name, everything, everything=True)
    assert (everything / "artifacts" / "outputs" / "a.txt").is_file()
    assert (everything / "named-outputs" / "model" / "m.txt").is_file()
    with pytest.raises(SubmitError, match="no output named 'nope'"):
        engine.download(name, tmp_path / "d4", output_name="nope")


def test_list_and_show(engine, project, unique):
    name = unique("listed")
    result, _ = run(engine, project("command: exit 1\nexperiment_name: listing\n"), name)
    listed = engine.list(experiment="listing", status="Failed")
    assert [j["name"] for j in listed] == [name]
    shown = engine.show(name)
    assert shown["status"] == "Failed" and shown["exit_code"] == 1 and shown["run_id"] == result.run_id


def test_failed_downloads_leave_no_partial_file_in_the_cache(engine, project, unique, http_files, monkeypatch):
    monkeypatch.setattr("airflow_mljobs.staging.time.sleep", lambda seconds: None)
    http_files["files"]["/cut.csv"] = b"a,b\n" * 1000
    http_files["truncated"].add("/cut.csv")  # every attempt breaks off half way through the body
    path = project(f"command: cat ${{{{inputs.d}}}}\ninputs:\n  d: {{type: uri_file, path: '{http_files['url']}/cut.csv'}}\n")
    with pytest.raises(SubmitError, match="cannot download .*/cut.csv"):
        engine.submit(engine.load(path), name=unique())
    assert http_files["hits"].count("/cut.csv") == 4  # every attempt was made
    assert not list((engine.home / "cache").glob(".part-*"))
