"""Today's shorthands expand into the canonical form; enum values are case-insensitive."""

from airflow_mljobs.spec import load
from airflow_mljobs.spec.model import CommandJob, SweepJob

from tests.helpers import JOBS


def test_literal_data_and_optional_inputs(write_yaml):
    doc = load(write_yaml("""
        command: python t.py ${{inputs.n}} ${{inputs.rate}} ${{inputs.flag}} ${{inputs.name}} ${{inputs.d}} $[[--x ${{inputs.opt}}]]
        inputs:
          n: 3
          rate: {value: 0.5}
          flag: true
          name: hello
          d: {path: ./data}
          opt: {type: integer, optional: true}
    """))
    inputs = doc.data["inputs"]
    assert inputs["n"] == {"type": "integer", "value": 3}
    assert inputs["rate"] == {"type": "number", "value": 0.5}
    assert inputs["flag"] == {"type": "boolean", "value": True}
    assert inputs["name"] == {"type": "string", "value": "hello"}
    assert inputs["d"] == {"type": "uri_folder", "path": "./data", "mode": "ro_mount"}
    assert inputs["opt"] == {"type": "integer", "optional": True}
    model = doc.model
    assert isinstance(model, CommandJob)
    assert model.inputs["n"].is_literal and not model.inputs["d"].is_literal
    assert not model.inputs["opt"].has_value


def test_empty_output_means_uri_folder_rw_mount(write_yaml):
    doc = load(write_yaml("""
        command: echo hi > ${{outputs.out}}/x
        outputs:
          out:
    """))
    assert doc.data["outputs"]["out"] == {"type": "uri_folder", "mode": "rw_mount"}


def test_enum_values_are_case_insensitive(write_yaml):
    doc = load(write_yaml("""
        type: Command
        command: python t.py
        distribution: {type: TensorFlow}
        resources: {instance_count: 3, docker_args: "--ipc=host --ulimit 'memlock=-1'"}
        inputs:
          d: {type: URI_Folder, path: x, mode: Download}
    """))
    assert doc.data["type"] == "command"
    assert doc.data["distribution"] == {"type": "tensorflow", "worker_count": 3, "parameter_server_count": 0}
    assert doc.data["inputs"]["d"]["type"] == "uri_folder" and doc.data["inputs"]["d"]["mode"] == "download"
    assert doc.data["resources"]["docker_args"] == ["--ipc=host", "--ulimit", "memlock=-1"]


def test_environment_variables_become_text(write_yaml):
    doc = load(write_yaml("""
        command: env
        environment_variables: {A: 1, B: true, C: {value: x}, D: plain}
    """))
    assert doc.data["environment_variables"] == {"A": "1", "B": "true", "C": "x", "D": "plain"}


def test_sweep_defaults_are_written_out():
    doc = load(JOBS / "iris" / "job-sweep.yml")
    assert isinstance(doc.model, SweepJob)
    assert doc.model.limits.max_concurrent_trials == 3
    assert doc.model.early_termination.slack_factor == 0.2
    assert doc.model.sampling_algorithm.seed == 42 and doc.model.sampling_algorithm.rule == "sobol"


def test_environment_file_reference_is_read_into_the_job():
    doc = load(JOBS / "iris" / "job-sweep.yml")
    env = doc.data["trial"]["environment"]
    assert env["image"] == "python:3.11-slim" and env["name"] == "iris-sklearn"
    assert doc.model.trial.environment.source.endswith("env.yml")


def test_experiment_name_defaults_to_the_folder_name(tmp_path, write_yaml):
    doc = load(write_yaml("command: echo\n", "my-project/job.yml"))
    assert doc.data["experiment_name"] == "my-project"
