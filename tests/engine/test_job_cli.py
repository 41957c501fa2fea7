"""`mljobs job create|stream|show|list|download|cancel` as a user runs them: real processes, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import yaml

from tests.engine.conftest import alive
from tests.helpers import JOBS


def test_create_stream_completed(mljobs, unique):
    name = unique("hello")
    result = mljobs("job", "create", "-f", str(JOBS / "hello-world.yml"), "--name", name, "--stream")
    assert result.returncode == 0, result.stderr
    assert f"RunId: {name}" in result.stdout and "hello world" in result.stdout
    assert "Execution Summary" in result.stdout and "Status: Completed" in result.stdout
    assert "not used on compute 'local'" in result.stderr  # said once, as a warning
    shown = json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)
    assert shown["status"] == "Completed" and shown["compute"] == "local"
    table = mljobs("job", "show", "-n", name).stdout.splitlines()
    assert len({len(line) - len(line.split("  ", 1)[1].lstrip()) for line in table if "  " in line}) == 1  # aligned
    assert any(line.startswith("tag.") or line.startswith("param.") or line.startswith("name") for line in table)


def test_create_stream_failed_and_timeout_exit_codes(mljobs, unique, tmp_path):
    failing = tmp_path / "fail.yml"
    failing.write_text("command: echo going down; exit 4\n")
    result = mljobs("job", "create", "-f", str(failing), "--stream")
    assert result.returncode == 1 and "Status: Failed" in result.stdout and "Exit code: 4" in result.stdout
    slow = tmp_path / "slow.yml"
    slow.write_text("command: sleep 60\nlimits: {timeout: 1}\n")
    result = mljobs("job", "create", "-f", str(slow), "--stream")
    assert result.returncode == 2 and "Status: Canceled" in result.stdout and "timed out" in result.stdout


def test_seed_set_compute_target_local_on_a_cluster_job(mljobs, unique):
    """The seed's idiom, on a file that names an Azure cluster: `--set compute.target=local`."""
    job = JOBS / "era-2021-11" / "job.yml"
    refused = mljobs("job", "create", "-f", str(job), "--stream")
    assert refused.returncode == 2 and "compute 'cpu-cluster' is not registered" in refused.stderr
    assert "job.yml:" in refused.stderr and "error: compute:" in refused.stderr  # where the YAML names it
    name = unique("era")
    result = mljobs("job", "create", "-f", str(job), "--set", "compute.target=local", "--name", name, "--stream")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accuracy" in result.stdout


def test_seed_lightgbm_job_runs_unchanged(mljobs, unique, tmp_path):
    name = unique("seed")
    result = mljobs("job", "create", "-f", str(JOBS / "seed-2021-05" / "job.yml"), "--name", name, "--stream",
                    timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecated form" in result.stderr
    shown = json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)
    assert "test-multi_logloss" in shown["metrics"]


def test_create_returns_at_once_then_stream_and_finish_in_background(mljobs, unique, tmp_path):
    job = tmp_path / "job.yml"
    job.write_text("command: for i in 1 2 3; do echo tick $i; sleep 0.2; done\n")
    name = unique("bg")
    created = mljobs("job", "create", "-f", str(job), "--name", name)
    assert created.returncode == 0 and created.stdout.strip() == name
    streamed = mljobs("job", "stream", "-n", name)
    assert streamed.returncode == 0 and "tick 3" in streamed.stdout
    deadline = time.time() + 30
    while time.time() < deadline:
        status = json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)["status"]
        if status == "Completed":
            break
        time.sleep(0.2)
    assert status == "Completed"


def test_ctrl_c_in_job_stream_stops_following_and_the_job_goes_on(mljobs, unique, tmp_path, workspace):
    """`mljobs job stream -n` attached to a job another command started: Ctrl-C stops following (exit 130), as
    `az ml job stream` does, and the job runs on to its end, recorded by the background watcher."""
    import signal

    job = tmp_path / "job.yml"
    go = tmp_path / "go"  # the job runs until the test lets it end
    job.write_text(f"command: echo tick; while [ ! -e {go} ]; do sleep 0.1; done; echo done\n")
    name = unique("followed")
    assert mljobs("job", "create", "-f", str(job), "--name", name).returncode == 0
    follower = subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", "job", "stream", "-n", name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "MLJOBS_HOME": str(workspace)})
    try:
        for line in follower.stdout:
            if line.startswith("tick"):
                break
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 130, err
    assert f"stopped following; job '{name}' goes on" in err and "Traceback" not in err
    assert json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)["status"] == "Running"
    go.touch()
    deadline = time.time() + 60
    while time.time() < deadline:
        shown = json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)
        if shown["status"] != "Running":
            break
        time.sleep(0.3)
    assert shown["status"] == "Completed"


def test_ctrl_c_while_the_end_is_recorded_is_completed_by_the_next_stream(mljobs, unique, tmp_path, workspace):
    """Ctrl-C while `create --stream` uploads a finished job's outputs: the command says how to complete the
    record (exit 130, no traceback), and `job stream -n` does, taking the unfinished finalizing over."""
    import signal

    job = tmp_path / "job.yml"
    job.write_text("command: >-\n  python -c \"import os; os.makedirs('outputs', exist_ok=True);\n"
                   "  [open(f'outputs/part{i}.bin', 'wb').write(os.urandom(1 << 22)) for i in range(128)]\"\n")
    name = unique("interrupted-end")
    cli = subprocess.Popen([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(job), "--name",
                            name, "--stream"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "MLJOBS_HOME": str(workspace)})
    mark = workspace / "jobs" / name / "finalizing"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (mark.is_file() and mark.read_text()):
            time.sleep(0.002)
        cli.send_signal(signal.SIGINT)  # in the middle of its uploads (512 MB)
        out, err = cli.communicate(timeout=120)
    finally:
        cli.kill()
    assert cli.returncode == 130, out[-2000:] + err[-2000:]
    assert f"`mljobs job stream -n {name}` completes it" in err and "Traceback" not in err
    streamed = mljobs("job", "stream", "-n", name)
    assert streamed.returncode == 0 and "Status: Completed" in streamed.stdout, streamed.stderr[-2000:]
    shown = json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)
    assert shown["status"] == "Completed"


def test_cancel_from_the_cli(mljobs, unique, tmp_path, workspace):
    job = tmp_path / "job.yml"
    job.write_text("command: echo $$ > pid; sleep 300\n")
    name = unique("cancel")
    assert mljobs("job", "create", "-f", str(job), "--name", name).returncode == 0
    pid_file = workspace / "jobs" / name / "wd" / "pid"
    deadline = time.time() + 20
    while not (pid_file.is_file() and pid_file.read_text().strip()) and time.time() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    result = mljobs("job", "cancel", "-n", name)
    assert result.returncode == 0 and f"{name}: Canceled" in result.stdout
    assert alive([pid]) == []
    assert json.loads(mljobs("job", "show", "-n", name, "-o", "json").stdout)["status"] == "Canceled"


def test_dry_run_prints_the_plan_and_starts_nothing(mljobs, unique):
    name = unique("dry")
    result = mljobs("job", "create", "-f", str(JOBS / "iris" / "job.yml"), "--name", name, "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = yaml.safe_load(result.stdout)
    assert plan["name"] == name and plan["backend"] == "local"
    assert "--n-estimators 50" in plan["processes"][0]["command"]
    assert mljobs("job", "show", "-n", name).returncode == 1


def test_list_and_download(mljobs, unique, tmp_path):
    job = tmp_path / "job.yml"
    job.write_text("command: mkdir -p outputs && echo r > outputs/r.txt && echo o > ${{outputs.out}}/o.txt\n"
                   "outputs: {out: }\nexperiment_name: cli-list\n")
    name = unique("dl")
    assert mljobs("job", "create", "-f", str(job), "--name", name, "--stream").returncode == 0
    listed = mljobs("job", "list", "--experiment", "cli-list")
    assert name in listed.stdout and "Completed" in listed.stdout
    target = tmp_path / "down"
    result = mljobs("job", "download", "-n", name, "--all", "--download-path", str(target))
    assert result.returncode == 0, result.stderr
    assert "Downloading artifacts" not in result.stderr  # no progress bars: the paths printed say what came
    assert str(target / "artifacts" / "outputs") in result.stdout.splitlines()
    assert (target / "artifacts" / "outputs" / "r.txt").read_text() == "r\n"
    assert (target / "named-outputs" / "out" / "o.txt").read_text() == "o\n"


def test_user_errors_exit_cleanly(mljobs, tmp_path):
    for args, code in ((["job", "show", "-n", "no-such-job"], 1), (["job", "stream", "-n", "no-such-job"], 1),
                       (["job", "create", "-f", str(tmp_path / "none.yml")], 2)):
        result = mljobs(*args)
        assert result.returncode == code and "Traceback" not in result.stderr, result.stderr
