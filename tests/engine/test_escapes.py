"""Names are data, never paths; a download writes below its destination only. Real jobs, a real store.

The workspace sits deep in a fresh folder (`<tmp>/d1/d2/d3/ws`), and everything under that folder but outside the
workspace is listed before and after: nothing may appear there, whatever the experiment, job, output, compute
or environment name (`../`, absolute paths, `%2e%2e`, separators, newlines), and whatever a run's artifacts
are named (`%2e%2e`, a newline, a symbolic link to a folder or to a file).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airflow_mljobs import compute
from airflow_mljobs.downloads import fetch, listing
from airflow_mljobs.engine import Engine
from airflow_mljobs.environments import resolve_environment
from airflow_mljobs.spec import MlJobsError
from airflow_mljobs.spec.model import Environment

DEPTH = 3  # folders between the test's root and the workspace


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("escapes")
    home = root.joinpath(*[f"d{i}" for i in range(1, DEPTH + 1)], "ws")
    home.mkdir(parents=True)
    (home.parent / "victim.yml").write_text("keep me\n")  # what `compute delete -n ../victim` removed
    return root, home


@pytest.fixture
def ws(tree, monkeypatch):
    root, home = tree
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLJOBS_HOME", str(home))
    return Engine(home=home)


def outside(root: Path, home: Path) -> set[str]:
    """Every path under `root` but outside the workspace `home` (and the tests' own scratch folder)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here == home or here == root / "scratch":
            dirs[:] = []
            continue
        found.update(str((here / name).relative_to(root)) for name in (*dirs, *files))
    return found


@pytest.fixture
def nothing_escapes(tree):
    """Assert, at the end of the test, that nothing was written outside the workspace."""
    root, home = tree
    (root / "scratch").mkdir(exist_ok=True)
    before = outside(root, home)
    yield root / "scratch"
    assert outside(root, home) - before == set()


def odd_names(root: Path) -> list[str]:
    up = "../" * (DEPTH + 2)  # from <ws>/artifacts/<name> up to the test's root
    return ["../../escaped", f"{up}deep", str(root / "absolute"), f"{root}/../{root.name}/absolute2",
            "%2e%2e/%2e%2e/encoded", "%2E%2E", "..", ".", "a/../../../b", "..\\..\\backslash", "~/home",
            f"file://{root}/uri", "new\nline", " ..", "é/../../x"]


def test_experiment_names_never_become_paths(ws, nothing_escapes, unique):
    """`experiment_name: ../../x` put the experiment's artifact folder (job.yml, user_logs/) outside the
    workspace, to any depth: an experiment name is data, and its folder a name made from it."""
    root = nothing_escapes.parent
    client = ws.tracker.client
    for experiment in odd_names(root):
        document = ws.load({"command": "echo hi", "experiment_name": experiment}, base_dir=nothing_escapes)
        result = ws.wait(ws.submit(document, name=unique("exp")))
        assert result.status == "Completed", (experiment, result.reason)
        found = client.get_experiment(result.experiment_id)
        assert found.name == experiment  # the name is kept as it was given
        run = client.get_run(result.run_id)
        location = Path(run.info.artifact_uri[len("file://"):])
        assert location.resolve().is_relative_to(ws.home / "artifacts"), (experiment, location)
        assert (location / "user_logs" / "std_log.txt").read_text() == "hi\n"


def test_experiment_names_from_the_cli_and_the_yaml(ws, nothing_escapes, unique):
    env = {**os.environ, "MLJOBS_HOME": str(ws.home)}
    job = nothing_escapes / "job.yml"
    job.write_text("command: echo hi\nexperiment_name: ../../../yaml-escape\n")
    for extra in ([], ["-e", "../../../cli-escape"]):
        result = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "create", "-f", str(job),
                                 "--name", unique("cli"), "--stream", *extra], capture_output=True, text=True,
                                env=env, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]


def test_job_and_output_names_are_refused_before_anything_is_written(ws, nothing_escapes):
    root = nothing_escapes.parent
    for name in odd_names(root):
        with pytest.raises(MlJobsError):
            ws.submit(ws.load({"command": "echo hi"}, base_dir=nothing_escapes), name=name)
        with pytest.raises(MlJobsError):
            ws.load({"command": "echo hi", "name": name}, base_dir=nothing_escapes)
        with pytest.raises(MlJobsError):
            ws.load({"command": "echo hi", "outputs": {name: {"type": "uri_folder"}}}, base_dir=nothing_escapes)
        with pytest.raises(MlJobsError):
            ws.load({"command": "echo hi", "inputs": {name: {"type": "uri_folder", "path": "."}}},
                    base_dir=nothing_escapes)


def test_compute_names_never_leave_the_registry(ws, nothing_escapes):
    """`mljobs compute create` wrote `<home>/computes/<name>.yml` for any name, `../../evil` too, and `compute
    delete -n ../../x` removed `<home>/../x.yml`."""
    root = nothing_escapes.parent
    victim = ws.home.parent / "victim.yml"
    for name in odd_names(root):
        path = nothing_escapes / "compute.yml"
        path.write_text(yaml.safe_dump({"name": name, "type": "docker"}))
        with pytest.raises(MlJobsError):
            compute.register(path, ws.home)
        assert not compute.unregister(name, ws.home)
        assert not compute.unregister("../victim", ws.home)
    assert victim.read_text() == "keep me\n"
    assert list((ws.home / "computes").glob("*")) == [] if (ws.home / "computes").exists() else True


def test_environment_names_are_looked_up_never_opened(ws, nothing_escapes):
    root = nothing_escapes.parent
    for name in odd_names(root):
        with pytest.raises(MlJobsError):
            resolve_environment(Environment(reference=f"azureml:{name}"), ws.home)


# -- downloads -------------------------------------------------------------------------------------------------
PLANT = r"""
import os
import mlflow

folder = mlflow.get_artifact_uri()[len("file://"):]
os.makedirs(f"{folder}/outputs", exist_ok=True)
os.symlink("/etc", f"{folder}/outputs/etclink")  # a folder link out of the store
os.symlink("..", f"{folder}/outputs/uplink")  # a loop
os.symlink("/etc/hostname", f"{folder}/outputs/filelink")  # a file link
os.makedirs("outputs/%2e%2e/%2e%2e", exist_ok=True)
open("outputs/%2e%2e/%2e%2e/encoded.txt", "w").write("encoded")
open("outputs/new\nline.txt", "w").write("newline")
open("outputs/ok.txt", "w").write("ok")
os.makedirs("outputs/sub/deeper", exist_ok=True)
open("outputs/sub/deeper/s.txt", "w").write("s")
open("outputs/100%.txt", "w").write("percent")
"""


@pytest.fixture(scope="module")
def odd_run(tree):
    """A job whose outputs hold `%2e%2e`, a newline in a file name, and links its code planted in its run's own
    artifact folder (as any job can, its artifact root being a folder of this machine)."""
    root, home = tree
    engine = Engine(home=home)
    code = root / "scratch" / "plant"
    code.mkdir(parents=True, exist_ok=True)
    (code / "plant.py").write_text(PLANT)
    document = engine.load({"command": "python plant.py", "code": str(code)}, base_dir=code)
    name = "odd-artifacts"
    result = engine.wait(engine.submit(document, name=name))
    assert result.status == "Completed", result.log_tail
    return engine, name


def test_fetch_writes_every_safe_file_and_reports_the_rest(ws, odd_run, nothing_escapes):
    engine, name = odd_run
    record = engine.tracker.record(engine.tracker.find_job(name))
    lines: list[str] = []
    destination = nothing_escapes / "down"
    top = listing(record, None, lines.append)
    assert sorted(top) == ["job.yml", "outputs", "user_logs"]
    written = [fetch(record, item, destination / "artifacts", lines.append) for item in top]
    assert destination / "artifacts" / "outputs" in written
    got = {str(p.relative_to(destination)) for p in destination.rglob("*") if p.is_file()}
    assert got == {"artifacts/job.yml", "artifacts/user_logs/std_log.txt", "artifacts/outputs/ok.txt",
                   "artifacts/outputs/sub/deeper/s.txt", "artifacts/outputs/100%.txt"}
    assert not any(p.is_symlink() for p in destination.rglob("*"))
    assert sorted(lines) == [
        "skipped outputs/%2e%2e: a '..' name (percent-encoded)",
        "skipped outputs/etclink: a symbolic link, not followed",
        "skipped outputs/filelink: a symbolic link, not followed",
        "skipped outputs/new\\nline.txt: a name holding an unprintable character (a newline, a NUL, ...)",
        "skipped outputs/uplink: a symbolic link, not followed",
    ]
    assert all("\n" not in line for line in lines)


def test_fetch_never_writes_through_a_link_in_the_destination(ws, odd_run, nothing_escapes):
    engine, name = odd_run
    record = engine.tracker.record(engine.tracker.find_job(name))
    elsewhere = nothing_escapes / "elsewhere"
    elsewhere.mkdir()
    destination = nothing_escapes / "linked"
    (destination / "artifacts").mkdir(parents=True)
    (destination / "artifacts" / "outputs").symlink_to(elsewhere, target_is_directory=True)
    lines: list[str] = []
    assert fetch(record, "outputs", destination / "artifacts", lines.append) is None
    assert list(elsewhere.iterdir()) == []
    assert any("is in the way (not a folder)" in line for line in lines)
    for bad in ("../job.yml", "/etc/hostname", "outputs/%2e%2e/%2e%2e/encoded.txt", "outputs/../job.yml", ""):
        lines.clear()
        assert fetch(record, bad, destination, lines.append) is None
        assert len(lines) == 1 and lines[0].startswith("skipped"), (bad, lines)
    assert list(elsewhere.iterdir()) == []


def test_job_download_of_odd_artifacts_reports_and_goes_on(ws, odd_run, nothing_escapes):
    """`mljobs job download` stopped at the first odd name with a traceback, half done."""
    engine, name = odd_run
    env = {**os.environ, "MLJOBS_HOME": str(engine.home)}
    destination = nothing_escapes / "cli"
    result = subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", "job", "download", "-n", name, "--all",
                             "--download-path", str(destination)], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (destination / "artifacts" / "outputs" / "ok.txt").read_text() == "ok"
    assert (destination / "artifacts" / "outputs" / "sub" / "deeper" / "s.txt").read_text() == "s"
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 5 and any("outputs/new\\nline.txt" in line for line in skipped)
    assert str(destination / "artifacts" / "outputs") in result.stdout.splitlines()


