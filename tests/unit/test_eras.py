"""Each legacy spelling becomes today's, with a warning at the line where it was written."""

import pytest

from airflow_mljobs.spec import load

from tests.helpers import JOBS


def _warned(document, path_fragment: str, line: int) -> bool:
    return any(path_fragment in w.path and w.mark.line == line for w in document.warnings)


def test_seed_command_job_normalises_to_current_form():
    doc = load(JOBS / "seed-2021-05" / "job.yml")
    data = doc.data
    assert data["code"] == "src"
    assert data["compute"] == "local"
    assert "${{inputs.iris}}" in data["command"] and "{inputs.iris}" not in data["command"].replace("${{inputs.iris}}", "")
    assert data["inputs"]["iris"] == {"type": "uri_file", "path": "../iris/data/iris.csv", "mode": "ro_mount"}
    assert data["environment"] == {"image": "python:3.11-slim", "conda_file": "environment.yml"}
    assert data["experiment_name"] == "lightgbm-iris-example"
    assert _warned(doc, "code.local_path", 6)
    assert _warned(doc, "command", 9)
    assert _warned(doc, "inputs.iris.mode", 16)
    assert _warned(doc, "compute.target", 22)


def test_seed_sweep_job_normalises_to_current_form():
    doc = load(JOBS / "seed-2021-05" / "job-sweep.yml")
    data = doc.data
    assert doc.kind == "sweep" and data["type"] == "sweep"
    assert data["sampling_algorithm"] == {"type": "random", "rule": "random"}
    assert data["limits"] == {"max_total_trials": 6, "max_concurrent_trials": 2, "timeout": 1200}
    assert data["inputs"]["iris"]["path"] == "../iris/data/iris.csv"
    assert data["compute"] == "local"
    assert "inputs" not in data["trial"] and "compute" not in data["trial"]
    assert "${{search_space.learning_rate}}" in data["trial"]["command"]
    assert _warned(doc, "timeout_minutes", 38)


def test_2021_11_forms(write_yaml):
    doc = load(JOBS / "era-2021-11" / "job.yml")
    assert doc.data["inputs"]["iris_csv"] == {"type": "uri_file", "path": "../iris/data/iris.csv", "mode": "download"}
    assert doc.data["environment"]["build"] == {"path": "../environments/docker-context", "dockerfile_path": "Dockerfile"}
    assert doc.data["compute"] == "azureml:cpu-cluster"
    sweep = load(JOBS / "era-2021-11" / "job-sweep.yml").data
    assert sweep["inputs"]["iris"] == {"type": "uri_folder", "path": "../iris/data", "mode": "ro_mount"}
    assert sweep["sampling_algorithm"] == {"type": "grid"}


def test_dataset_input_and_total_process_count(write_yaml):
    path = write_yaml("""
        command: python train.py --data {inputs.d}
        inputs:
          d:
            dataset: azureml:mnist:1
        compute:
          target: azureml:gpu
          instance_count: 2
        distribution:
          type: pytorch
          process_count: 8
    """)
    doc = load(path)
    assert doc.data["inputs"]["d"] == {"type": "uri_folder", "path": "azureml:mnist:1", "mode": "ro_mount"}
    assert doc.data["resources"]["instance_count"] == 2
    assert doc.data["distribution"] == {"type": "pytorch", "process_count_per_instance": 4}
    assert any("process_count_per_instance: 4" in w.hint for w in doc.warnings)


def test_uneven_total_process_count_is_an_error(write_yaml):
    from airflow_mljobs.spec import SpecError

    path = write_yaml("""
        command: python train.py
        compute: {target: local, instance_count: 2}
        distribution: {type: mpi, process_count: 3}
    """)
    with pytest.raises(SpecError, match="cannot be split evenly"):
        load(path)


def test_errors_in_a_legacy_file_point_at_the_legacy_place(write_yaml):
    from airflow_mljobs.spec import SpecError

    path = write_yaml("""
        type: sweep_job
        algorithm: random
        trial:
          command: python x.py {search_space.lr}
        search_space:
          lr: {type: uniform, min_value: 0, max_value: 1}
        objective: {goal: maximize, primary_metric: acc}
        max_total_trials: 5000
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    (problem,) = info.value.errors
    assert problem.path == "limits.max_total_trials"
    assert problem.mark.line == 8
