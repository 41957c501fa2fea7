"""YAML as Azure ML reads it, in the shapes of the public examples of every era: a one-file `code`, 2021-11
`dataset: {local_path}` inputs and `docker.build.dockerfile` environments, duplicate keys (the last wins), and
curated environment names of every era."""

import pytest

from airflow_mljobs.environments import curated_image, resolve_environment
from airflow_mljobs.preflight import problems
from airflow_mljobs.spec import Environment, SpecError, SubmitError, load, load_text
from airflow_mljobs.staging import snapshot_code


# -- code: one file ------------------------------------------------------------------------------------------
def test_code_may_name_one_file(write_yaml, tmp_path):
    (tmp_path / "python").mkdir()
    (tmp_path / "python" / "sweep_script.py").write_text("print('hi')\n")
    path = write_yaml("""
        command: python sweep_script.py
        code: python/sweep_script.py
    """)
    assert load(path).model.trial.code == "python/sweep_script.py"
    snapshot = snapshot_code(tmp_path / "python" / "sweep_script.py", tmp_path / "job" / "wd")
    assert (snapshot.files, sorted(p.name for p in (tmp_path / "job" / "wd").iterdir())) == (1, ["sweep_script.py"])


def test_preflight_accepts_one_file_and_refuses_a_missing_one(write_yaml, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    path = write_yaml("command: python train.py\ncode: train.py\n")
    assert problems(load(path), tmp_path / "ws") == []
    gone = write_yaml("command: python train.py\ncode: gone.py\n", "gone.yml")
    assert [p.message for p in problems(load(gone), tmp_path / "ws")] == [f"{tmp_path}/gone.py does not exist"]


# -- 2021-11 inputs and environments ------------------------------------------------------------------------
def test_a_2021_11_dataset_with_a_local_path_is_a_folder_input(write_yaml):
    doc = load(write_yaml("""
        command: python main.py --data ${{inputs.corpus}}
        inputs:
          corpus:
            dataset:
              local_path: data
            mode: download
    """))
    assert doc.data["inputs"]["corpus"] == {"type": "uri_folder", "path": "data", "mode": "download"}
    (warning,) = doc.warnings
    assert (warning.mark.line, warning.path) == (5, "inputs.corpus.dataset.local_path")
    assert "'dataset.local_path: ...' is a deprecated form" in warning.message
    assert warning.hint == "write it as type: uri_folder with path: ..."


def test_a_2021_dockerfile_reference_is_a_build_context(write_yaml):
    doc = load(write_yaml("""
        command: julia -e 'include("run.jl")'
        environment:
          docker:
            build:
              dockerfile: file:Dockerfile
    """))
    assert doc.data["environment"] == {"build": {"path": ".", "dockerfile_path": "Dockerfile"}}
    (warning,) = doc.warnings
    assert (warning.mark.line, warning.path) == (4, "environment.docker.build")
    assert warning.hint == "write it as environment.build: {path: ., dockerfile_path: Dockerfile}"


def test_an_inline_dockerfile_and_conda_on_a_build_are_said_plainly(write_yaml):
    inline = write_yaml("""
        command: echo hi
        environment:
          docker:
            build:
              dockerfile: "FROM python:3.11-slim"
    """)
    with pytest.raises(SpecError, match="an inline Dockerfile is not supported"):
        load(inline)
    conda = write_yaml("""
        command: echo hi
        environment:
          docker: {build: {dockerfile: "file:Dockerfile"}}
          conda_file: env.yml
    """, "conda.yml")
    with pytest.raises(SpecError) as info:
        load(conda)
    assert [e.message for e in info.value.errors] == [
        "conda_file is layered on an image: add image (a build context installs its own packages)"]


# -- duplicate keys -----------------------------------------------------------------------------------------
def test_a_duplicate_key_is_a_warning_and_the_last_value_wins(write_yaml):
    doc = load(write_yaml("""
        command: python train.py
        distribution:
          type: tensorflow
          worker_count: 2
          parameter_server_count: 0
          worker_count: 3
        resources:
          instance_count: 3
    """))
    assert doc.model.trial.distribution.worker_count == 3
    (warning,) = doc.warnings
    assert (warning.mark.line, warning.path, warning.hint) == (6, "distribution.worker_count",
                                                               "line 4 sets it too; keep one of them")
    assert warning.message.startswith("duplicate key 'worker_count': this later value is the one used")


def test_a_replaced_value_leaves_no_marks_behind(write_yaml):
    path = write_yaml("""
        command: echo hi
        resources:
          instance_count: 2
          docker_args: [--ipc=host, --cpus=2]
        resources:
          instance_count: many
    """)
    with pytest.raises(SpecError) as info:
        load(path)
    assert [(e.mark.line, e.path) for e in info.value.errors] == [(6, "resources.instance_count")]


def test_a_merge_key_is_overridden_without_a_warning():
    doc = load_text("command: echo hi\ntags: &base {OMP: '1', A: '2'}\nenvironment_variables:\n  <<: *base\n"
                    "  A: '3'\n", "merge.yml")
    assert doc.data["environment_variables"] == {"OMP": "1", "A": "3"}
    assert not [w for w in doc.warnings if "duplicate" in w.message]


def test_duplicates_do_not_lift_the_alias_bomb_limit():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 5):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]")
    lines += ["b: *a4"] * 20  # each replaces the one before it
    with pytest.raises(SpecError, match="more than"):
        load_text("\n".join(lines) + "\ncommand: echo\n", "bomb.yml")


# -- curated environments of every era ----------------------------------------------------------------------
CURATED = {
    "azureml:AzureML-sklearn-0.24-ubuntu18.04-py37-cpu:1":
        "mcr.microsoft.com/azureml/curated/sklearn-0.24-ubuntu18.04-py37-cpu:1",
    "azureml:AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu:6":
        "mcr.microsoft.com/azureml/curated/pytorch-1.9-ubuntu18.04-py37-cuda11-gpu:6",
    "azureml:AzureML-tensorflow-2.4-ubuntu18.04-py37-cuda11-gpu@latest":
        "mcr.microsoft.com/azureml/curated/tensorflow-2.4-ubuntu18.04-py37-cuda11-gpu:latest",
    "azureml:AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu":
        "mcr.microsoft.com/azureml/curated/lightgbm-3.2-ubuntu18.04-py37-cpu:latest",
    "azureml://registries/azureml/environments/sklearn-1.1/versions/4": "mcr.microsoft.com/azureml/curated/sklearn-1.1:4",
}


@pytest.mark.parametrize("reference", CURATED)
def test_a_curated_name_the_tables_lack_is_azures_image_with_a_note(tmp_path, reference):
    notes = []
    env = resolve_environment(Environment(reference=reference), tmp_path, notes.append)
    assert env.image == CURATED[reference] == curated_image(reference)
    (note,) = notes
    assert note.startswith(f"environment '{reference}' runs as Azure's curated image {CURATED[reference]}")


def test_the_tables_win_and_other_names_stay_errors(tmp_path):
    (tmp_path / "environments.yml").write_text("AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu:\n  image: mine:1\n")
    mine = resolve_environment(Environment(reference="azureml:AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu:6"),
                               tmp_path)
    packaged = resolve_environment(Environment(reference="azureml:AzureML-sklearn-1.5@latest"), tmp_path)
    assert (mine.image, packaged.image) == ("mine:1", "python:3.11-slim")
    for unknown in ("azureml:my-env:3", "azureml:AzureML-x@stable", "azureml://registries/other/environments/x/versions/1"):
        assert curated_image(unknown) is None
        with pytest.raises(SubmitError, match="is not known here"):
            resolve_environment(Environment(reference=unknown), tmp_path)


@pytest.mark.parametrize("compute", ["docker", "local"])
def test_a_curated_job_of_2021_is_not_refused(write_yaml, tmp_path, compute):
    path = write_yaml(f"""
        command: python main.py
        environment: azureml:AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu:6
        compute: {compute}
    """)
    assert problems(load(path), tmp_path / "ws") == []
    unknown = write_yaml("command: python main.py\nenvironment: azureml:my-env:3\ncompute: local\n", "unknown.yml")
    assert problems(load(unknown), tmp_path / "ws") == []  # no image is used on local: never an error
