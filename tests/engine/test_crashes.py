"""Nothing lost when the process that follows a job dies: the job keeps its limits on its own, and whoever reads it
next records its true end. kill -9 of a `--stream` command and of the background watcher, on local processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.slow


def shown(mljobs, name: str) -> dict:
    result = mljobs("job", "show", "-n", name, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for_line(process, text: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    for line in process.stdout:
        if text in line or time.time() > deadline:
            return
    raise AssertionError(f"the command ended before printing {text!r}")


def rank_processes(workspace, name: str) -> list[psutil.Process]:
    """The job's rank shells still running (their pids are in the job folder)."""
    found = []
    for pid_file in (workspace / "jobs" / name / "exit").glob("*.pid"):
        try:
            process = psutil.Process(int(pid_file.read_text()))
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_job_whose_stream_is_killed_is_recorded_completed_by_the_next_show(mljobs, tmp_path, unique, workspace):
    job = tmp_path / "job.yml"
    job.write_text("command: echo started; sleep 6; echo finished\n")
    name = unique("orphan")
    stream = mljobs.start("job", "create", "-f", str(job), "--name", name, "--stream")
    try:
        wait_for_line(stream, "started")
        os.kill(stream.pid, signal.SIGKILL)
        stream.wait(10)
    finally:
        stream.kill()
    assert shown(mljobs, name)["status"] == "Running"  # it runs on, its follower gone
    deadline = time.time() + 30
    while rank_processes(workspace, name) and time.time() < deadline:
        time.sleep(0.2)
    job_shown = shown(mljobs, name)
    assert (job_shown["status"], job_shown["exit_code"]) == ("Completed", 0)
    listed = json.loads(mljobs("job", "list", "-o", "json").stdout)
    assert [j["status"] for j in listed if j["name"] == name] == ["Completed"]
    logs = tmp_path / "logs"
    assert mljobs("job", "download", "-n", name, "--download-path", str(logs)).returncode == 0
    assert "finished" in (logs / "artifacts" / "user_logs" / "std_log.txt").read_text()


def test_a_job_whose_watcher_is_killed_still_stops_at_its_timeout(mljobs, tmp_path, unique, workspace):
    """limits.timeout is kept by the job's own supervisor, not by whoever follows it."""
    job = tmp_path / "job.yml"
    job.write_text("command: echo started; sleep 60 & sleep 60\nlimits: {timeout: 3}\n")
    name = unique("watchless")
    created = mljobs("job", "create", "-f", str(job), "--name", name)
    assert created.returncode == 0, created.stderr
    watchers = [p for p in psutil.process_iter(["cmdline"]) if "_watch" in (p.info["cmdline"] or [])
                and name in (p.info["cmdline"] or [])]
    assert len(watchers) == 1
    watchers[0].kill()
    started = time.time()
    deadline = started + 30
    while rank_processes(workspace, name) and time.time() < deadline:
        time.sleep(0.2)
    assert rank_processes(workspace, name) == [] and time.time() - started < 15
    job_shown = shown(mljobs, name)
    assert job_shown["status"] == "Canceled"
    assert job_shown["failure_reason"] == "timed out after limits.timeout of 3 s"
    assert not any("sleep 60" in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))


def test_a_sweep_whose_runner_is_killed_is_recorded_failed_and_leaves_no_trial_running(mljobs, project, unique,
                                                                                       workspace):
    """kill -9 of `create --stream` running a sweep: the next command that reads it records the sweep Failed with
    the reason, cancels the trials nobody will use, and nothing of it is left running."""
    path = project("""
        type: sweep
        trial:
          command: echo trial ${{search_space.x}}; sleep 60
        sampling_algorithm: {type: random, seed: 1}
        search_space: {x: {type: choice, values: [1, 2, 3, 4]}}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 4, max_concurrent_trials: 2}
    """, name="sweep.yml")
    name = unique("orphan-sweep")
    runner = mljobs.start("job", "create", "-f", str(path), "--name", name, "--stream")
    try:
        started = 0
        for line in runner.stdout:
            started += "started" in line
            if started == 2:
                break
        assert started == 2
        trial_pids = [p.pid for p in psutil.Process(runner.pid).children(recursive=True)]
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(10)
    finally:
        runner.kill()
    sweep = shown(mljobs, name)
    assert sweep["status"] == "Failed" and f"(pid {runner.pid}) died" in sweep["failure_reason"]
    trials = [j for j in json.loads(mljobs("job", "list", "--include-children", "-o", "json").stdout)
              if j["parent_run_id"] == sweep["run_id"]]
    assert sorted(t["status"] for t in trials) == ["Canceled", "Canceled"]
    assert [pid for pid in trial_pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []


def test_outputs_holding_a_fifo_and_dangling_or_escaping_links_end_completed_with_a_warning(engine, project, unique,
                                                                                           tmp_path):
    """Odd entries are left out and said in the job's log and record; the regular files are uploaded, a link to a
    file inside the job folder as that file, and nothing outside the job folder is ever read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not the job's")
    path = project(f"""
        command: >-
          echo kept > outputs/kept.txt && mkfifo outputs/pipe && ln -s missing outputs/dangling &&
          ln -s .. outputs/up && ln -s {secret} outputs/secret && ln -s kept.txt outputs/alias &&
          mkfifo ${{{{outputs.model}}}}/pipe && echo weights > ${{{{outputs.model}}}}/w.txt
        outputs: {{model: {{type: uri_folder}}}}
    """)
    name = unique("odd")
    submission = engine.submit(engine.load(path), name=name)
    result = engine.finalize(submission, engine.follow(submission))
    assert result.status == "Completed"
    record = engine.tracker.record(engine.tracker.find_job(name))
    assert sorted(record.artifacts("outputs")) == ["outputs/alias", "outputs/kept.txt"]
    assert record.artifacts("named-outputs/model") == ["named-outputs/model/w.txt"]
    skipped = engine.tracker.run(result.run_id).data.tags["mljobs.not_uploaded"]
    for entry, why in (("pipe", "not a regular file"), ("dangling", "a link to nothing"), ("up", "a link to a folder"),
                       ("secret", "a link out of the job folder")):
        assert f"wd/outputs/{entry}: {why}" in skipped
    assert "named-outputs/model/pipe: not a regular file" in skipped
    downloaded = tmp_path / "got"
    engine.download(name, downloaded)
    assert (downloaded / "artifacts" / "outputs" / "alias").read_text() == "kept\n"
    assert "mljobs: WARNING: not uploaded: wd/outputs/pipe" in (
        downloaded / "artifacts" / "user_logs" / "std_log.txt").read_text()


def test_a_finalizer_killed_midway_is_taken_over_by_the_next_show(mljobs, tmp_path, unique, workspace):
    """kill -9 of `create --stream` while it uploads the outputs: the next command that reads the job finishes the
    upload and records the end."""
    job = tmp_path / "job.yml"
    job.write_text("command: for i in $(seq 1 1500); do echo $i > outputs/f$i.txt; done\n")
    name = unique("half-finalized")
    stream = mljobs.start("job", "create", "-f", str(job), "--name", name, "--stream")
    try:
        deadline = time.time() + 60
        while not (workspace / "jobs" / name / "finalizing").is_file() and time.time() < deadline:
            time.sleep(0.02)
        os.kill(stream.pid, signal.SIGKILL)
        stream.wait(10)
    finally:
        stream.kill()
    folder = workspace / "jobs" / name
    assert (folder / "finalizing").is_file() and not (folder / "result.json").exists()
    job_shown = shown(mljobs, name)
    assert job_shown["status"] == "Completed"
    got = tmp_path / "got"
    assert mljobs("job", "download", "-n", name, "--download-path", str(got)).returncode == 0
    assert len(list((got / "artifacts" / "outputs").iterdir())) == 1500


def test_a_submitter_killed_while_it_staged_the_job_leaves_the_name_free(engine, project, unique, workspace):
    """Killed before the run was made (a big snapshot, a slow download): its half-made folder does not block the
    name."""
    name = unique("staged")
    folder = workspace / "jobs" / name
    folder.mkdir(parents=True)
    noted = subprocess.run([sys.executable, "-c", "import sys, pathlib; from airflow_mljobs.processes import "
                            "note_this_process; note_this_process(pathlib.Path(sys.argv[1]))",
                            str(folder / "submitter")])
    assert noted.returncode == 0  # that submitter is gone now, its folder half made
    (folder / "wd").mkdir()
    submission = engine.submit(engine.load(project("command: echo again\n")), name=name)
    assert engine.wait(submission).status == "Completed"
