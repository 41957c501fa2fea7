"""The backend contract: what every backend does, each run through the real Engine with real processes or
containers, the job's `compute:` naming the backend (every backend is a compute of its own name).

Start, logs (in order, each line once, resumable, by rank), exit codes, timeouts, cancel, reattaching from another
engine, outputs and logs brought back, the run's identity in the command, a job found again after its submitter
died; and after every test nothing of its jobs is left (conftest). The subjects are in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

from airflow_mljobs.backends.base import get_backend
from airflow_mljobs.engine import SUBMITTER, Engine
from airflow_mljobs.processes import start_time
from airflow_mljobs.tracking import tags as T
from tests.contract.conftest import KILL_GRACE_SECONDS

GATE = "while [ ! -f go ]; do sleep 0.05; done"  # waits until the test lets it go on (see `release`)
# two processes left running in the background (one of them a subshell), in the rank's process group
BACKGROUND = "sleep 60 & (sleep 60; echo never) &"


def job(project, backend, command: str, **fields) -> os.PathLike:
    """A job YAML for `backend`: the same job on every backend (the image is what a container runs)."""
    lines = [f"command: {json.dumps(command)}", f"compute: {backend.compute}", "environment: {image: python:3.11-slim}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in fields.items()]  # JSON is YAML
    return project("\n".join(lines) + "\n")


def run(engine, path, name):
    lines = []
    submission = engine.submit(engine.load(path), name=name)
    outcome = engine.follow(submission, lines.append)
    return engine.finalize(submission, outcome), "".join(lines)


def lines_of(chunks) -> list[str]:
    return [line for chunk in chunks for line in chunk.splitlines()]


def release(backend, engine, name: str) -> None:
    (backend.workdir(engine, name) / "go").write_text("")


def tags_of(engine, result) -> dict:
    return engine.tracker.run(result.run_id).data.tags


def follow_until(follower, seen: list[str], text: str, seconds: float = 30) -> None:
    """Step a follower that writes to `seen` until `text` has been written (the job still running)."""
    deadline = time.time() + seconds
    while text not in "".join(seen):
        assert time.time() < deadline, f"never saw {text!r}"
        assert follower.step(0.05) is None, "the job ended early"


# -- start ---------------------------------------------------------------------------------------------------
def test_a_job_runs_to_completion_and_its_run_says_completed_with_exit_code_0(backend, engine, project, unique):
    name = unique()
    result, log = run(engine, job(project, backend, "echo hello from the job"), name)
    assert (result.status, result.exit_code, result.reason) == ("Completed", 0, None), log
    assert log == "hello from the job\n"
    run_ = engine.tracker.run(result.run_id)
    tags = run_.data.tags
    assert (tags[T.STATUS], tags[T.EXIT_CODE], run_.info.status) == ("Completed", "0", "FINISHED")
    assert tags[T.BACKEND] == tags[T.COMPUTE] == backend.compute and tags[T.JOB_NAME] == name


def test_what_a_completed_command_left_running_in_the_background_ends_with_the_job(backend, engine, project, unique):
    name = unique()
    result, log = run(engine, job(project, backend, f"{BACKGROUND} echo done"), name)
    assert result.status == "Completed", log
    assert backend.leftovers(engine, name) == []


# -- logs ------------------------------------------------------------------------------------------------------
def test_log_lines_are_streamed_in_order_once_each_and_resume_from_a_token_in_another_engine(backend, engine, project,
                                                                                             unique):
    """stdout and stderr in the order they were written; a follower that stops partway (a crash, a trigger
    deferred) is followed by another, in another engine, from the token it had: only the rest comes."""
    path = job(project, backend, f"echo first; echo second >&2; for i in 1 2 3; do echo line $i; done; {GATE}; "
                                 f"for i in 4 5 6; do echo line $i; done")
    name = unique()
    submission = engine.submit(engine.load(path), name=name)
    seen = []
    follower = engine.follower(submission, seen.append)
    follow_until(follower, seen, "line 3\n")
    token = follower.token
    release(backend, engine, name)
    other = Engine(home=engine.home)
    attached = other.attach(name)
    rest = []
    outcome = other.follow(attached, rest.append, since=token)
    assert other.finalize(attached, outcome).status == "Completed"
    assert lines_of(seen) == ["first", "second", "line 1", "line 2", "line 3"]
    assert lines_of(rest) == ["line 4", "line 5", "line 6"]
    again = []
    other.follow(attached, again.append)  # from the start: every line, once
    assert lines_of(again) == lines_of(seen) + lines_of(rest)


def test_the_lines_of_a_job_of_several_ranks_are_prefixed_with_their_rank(backend, engine, project, unique):
    path = job(project, backend, 'echo "hello from $RANK"; echo "bye from $RANK"',
               distribution={"type": "pytorch", "process_count_per_instance": 2})
    result, log = run(engine, path, unique())
    assert result.status == "Completed", log
    for rank in (0, 1):
        mine = [line for line in log.splitlines() if line.startswith(f"[rank {rank}] ")]
        assert mine == [f"[rank {rank}] hello from {rank}", f"[rank {rank}] bye from {rank}"], log
    assert len(log.splitlines()) == 4


# -- exit codes ------------------------------------------------------------------------------------------------
def test_a_command_that_exits_3_is_failed_with_exit_code_3_a_reason_and_its_last_words(backend, engine, project,
                                                                                       unique):
    result, log = run(engine, job(project, backend, "echo preparing; echo the last words >&2; exit 3"), unique())
    assert (result.status, result.exit_code) == ("Failed", 3), log
    assert "exited with code 3" in result.reason
    assert result.log_tail.splitlines()[-2:] == ["preparing", "the last words"]
    run_ = engine.tracker.run(result.run_id)
    assert (run_.data.tags[T.STATUS], run_.data.tags[T.EXIT_CODE], run_.info.status) == ("Failed", "3", "FAILED")
    assert run_.data.tags[T.REASON] == result.reason


def test_a_failing_rank_stops_the_others_and_names_itself(backend, engine, project, unique):
    path = job(project, backend, 'if [ "$RANK" = 1 ]; then exit 7; fi; sleep 60',
               distribution={"type": "pytorch", "process_count_per_instance": 2})
    started = time.time()
    result, log = run(engine, path, unique())
    assert (result.status, result.exit_code) == ("Failed", 7), log
    assert "rank 1" in result.reason and "exited with code 7" in result.reason
    assert time.time() - started < 20


# -- timeout and cancel ----------------------------------------------------------------------------------------
def test_a_job_past_its_timeout_is_canceled_saying_it_timed_out(backend, engine, project, unique):
    path = job(project, backend, f"{BACKGROUND} echo started; sleep 60", limits={"timeout": 2})
    name = unique()
    started = time.time()
    result, log = run(engine, path, name)
    took = time.time() - started
    assert result.status == "Canceled" and result.exit_code is None, log
    assert result.reason == "timed out after limits.timeout of 2 s"
    assert 2 <= took < 2 + KILL_GRACE_SECONDS + 10
    run_ = engine.tracker.run(result.run_id)
    tags = run_.data.tags
    assert (tags[T.STATUS], tags[T.REASON], run_.info.status) == ("Canceled", result.reason, "KILLED")
    assert backend.leftovers(engine, name) == []


def test_a_running_job_canceled_from_another_engine_ends_canceled_with_nothing_left(backend, engine, project, unique):
    """As `mljobs job cancel -n` from another process: the follower sees the job end Canceled, the job is
    finalized once, and nothing it started runs on."""
    path = job(project, backend, f"{BACKGROUND} echo started; wait")
    name = unique()
    submission = engine.submit(engine.load(path), name=name)
    seen = []
    follower = engine.follower(submission, seen.append)
    follow_until(follower, seen, "started\n")
    assert backend.leftovers(engine, name) != []  # it runs (the check below is not vacuous)
    outcome = {}
    following = threading.Thread(target=lambda: outcome.update(end=follower.run()))
    following.start()
    result = Engine(home=engine.home).cancel(name)
    following.join(30)
    assert (result.status, result.reason) == ("Canceled", "canceled by user")
    assert outcome["end"].status == "Canceled"
    assert engine.finalize(submission, outcome["end"]) == result  # finalized once: the saved result
    run_ = engine.tracker.run(result.run_id)
    assert (run_.data.tags[T.STATUS], run_.info.status) == ("Canceled", "KILLED")
    assert backend.leftovers(engine, name) == []


# -- reattach --------------------------------------------------------------------------------------------------
def test_a_second_engine_attaches_by_name_follows_the_job_to_its_end_and_finalizes_it(backend, engine, project, unique):
    path = job(project, backend, f"echo before; {GATE}; echo after")
    name = unique()
    first = engine.submit(engine.load(path), name=name)
    saved = first.handle.to_dict()
    assert json.loads(json.dumps(saved)) == saved and saved["backend"] == backend.compute  # plain JSON
    again = get_backend(backend.compute).attach(saved)
    assert type(again) is type(first.handle) and again.to_dict() == saved
    other = Engine(home=engine.home)
    attached = other.attach(name)
    assert attached.reattached and attached.run_id == first.run_id and attached.handle.to_dict() == saved
    assert attached.handle.poll() is None  # running
    release(backend, engine, name)
    lines = []
    result = other.finalize(attached, other.follow(attached, lines.append))
    assert result.status == "Completed" and lines_of(lines) == ["before", "after"]
    assert tags_of(other, result)[T.STATUS] == "Completed"
    assert engine.finalize(first) == result  # the first engine reads the end the second wrote


def test_a_job_whose_submitter_died_before_saving_its_handle_is_found_again(backend, engine, project, unique):
    """A worker killed after starting a job's processes and before saving their handle: another engine finds
    them (the backend's `recover`: containers by their labels, processes by the pid each rank wrote as it
    started) and sees the job out."""
    path = job(project, backend, f'{GATE}; echo "went in run $MLFLOW_RUN_ID"')
    name = unique()
    first = engine.submit(engine.load(path), name=name)
    handle_file = engine.job_dir(name) / "handle.json"
    handle_file.unlink()  # as a submitter killed a moment earlier left the job
    _as_if_its_submitter_died(engine.job_dir(name))
    later = Engine(home=engine.home)
    attached = later.attach(name)
    assert attached.reattached and attached.run_id == first.run_id and handle_file.is_file()
    release(backend, engine, name)
    lines = []
    result = later.finalize(attached, later.follow(attached, lines.append))
    assert result.status == "Completed" and lines_of(lines) == [f"went in run {first.run_id}"], (result, lines)


def _as_if_its_submitter_died(job_dir) -> None:
    """Name a process that has ended as the job's submitter (this test's process, which submitted it, lives)."""
    gone = subprocess.Popen(["sleep", "0.1"])
    started = start_time(gone.pid)
    gone.wait()
    (job_dir / SUBMITTER).write_text(json.dumps({"pid": gone.pid, "create_time": started}))


# -- outputs and the run ---------------------------------------------------------------------------------------
def test_outputs_named_outputs_and_logs_land_in_the_runs_artifacts(backend, engine, project, unique, tmp_path):
    path = job(project, backend, "mkdir -p outputs logs && echo o > outputs/o.txt && echo l > logs/l.txt && "
                                 "echo m > ${{outputs.model}}/m.txt && echo written",
               outputs={"model": {"type": "uri_folder"}})
    name = unique()
    result, log = run(engine, path, name)
    assert result.status == "Completed", log
    record = engine.tracker.record(engine.tracker.run(result.run_id))
    assert record.artifacts("outputs") == ["outputs/o.txt"]
    assert record.artifacts("logs") == ["logs/l.txt"]
    assert record.artifacts("named-outputs/model") == ["named-outputs/model/m.txt"]
    assert "user_logs/std_log.txt" in record.artifacts("user_logs")
    assert "job.yml" in record.artifacts()
    assert record.download("outputs/o.txt", tmp_path / "got").read_text() == "o\n"
    written = engine.job_dir(name) / "named-outputs" / "model" / "m.txt"  # brought back to this host's folder
    assert result.outputs == {"model": str(written.parent)}
    assert written.read_text() == "m\n" and written.stat().st_uid == os.getuid()  # and it belongs to the user


def test_the_command_learns_its_run_unless_the_job_sets_a_variable_itself(backend, engine, project, unique):
    path = job(project, backend, 'echo "run=$MLFLOW_RUN_ID experiment=$MLFLOW_EXPERIMENT_ID uri=$MLFLOW_TRACKING_URI"',
               environment_variables={"MLFLOW_EXPERIMENT_ID": "mine"})
    result, log = run(engine, path, unique())
    assert result.status == "Completed", log
    assert log.startswith(f"run={result.run_id} experiment=mine uri=") and log.strip().split("uri=")[1], log
    assert result.run_id in (engine.job_dir(result.name) / "plan.json").read_text()

