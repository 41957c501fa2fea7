"""`mljobs job validate` as a user runs it: a real process, real exit codes, no tracebacks."""

import json
import subprocess
import sys

import yaml

from tests.helpers import JOBS


def mljobs(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "airflow_mljobs.cli", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_valid_job_prints_normalised_yaml_and_warnings():
    result = mljobs("job", "validate", "-f", str(JOBS / "seed-2021-05" / "job.yml"))
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["compute"] == "local" and printed["code"] == "src"
    assert "job.yml:6:3: warning: code.local_path" in result.stderr


def test_json_output_and_set():
    result = mljobs("job", "validate", "-f", str(JOBS / "iris" / "job.yml"), "--set", "inputs.n_estimators=7",
                    "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["inputs"]["n_estimators"] == {"type": "integer", "value": 7}


def test_invalid_job_exits_2_with_located_errors_and_no_traceback(write_yaml):
    path = write_yaml("command: echo ${{inputs.x}}\nenviroment: {image: python}\n")
    result = mljobs("job", "validate", "-f", str(path))
    assert result.returncode == 2
    assert f"{path}:1:15: error: command: ${{{{inputs.x}}}} names no declared input 'x'" in result.stderr
    assert f"{path}:2:1: error: enviroment: unknown key 'enviroment'" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_file_and_bad_set_exit_2(tmp_path):
    for args in (["-f", str(tmp_path / "none.yml")], ["-f", str(JOBS / "hello-world.yml"), "--set", "oops"]):
        result = mljobs("job", "validate", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_unsupported_type_names_the_type(write_yaml):
    result = mljobs("job", "validate", "-f", str(write_yaml("type: pipeline\njobs: {}\n")))
    assert result.returncode == 2
    assert "job type 'pipeline' is not supported" in result.stderr


def test_compute_and_environment_validate():
    assert mljobs("compute", "validate", "-f", str(JOBS / "compute" / "cpu-cluster.yml")).returncode == 0
    assert mljobs("environment", "validate", "-f", str(JOBS / "environments" / "sklearn.yml")).returncode == 0
    wrong = mljobs("job", "validate", "-f", str(JOBS / "compute" / "cpu-cluster.yml"))
    assert wrong.returncode == 2 and "this is a compute document" in wrong.stderr
