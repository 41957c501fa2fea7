"""The execution plan: rendered commands, the environment contract, per-rank distributed variables."""

import json
import shlex

import pytest

from airflow_mljobs.compute import BUILTIN
from airflow_mljobs.plan import build_plan, with_run
from airflow_mljobs.spec import SubmitError, load

TRACKING = {"MLFLOW_TRACKING_URI": "sqlite:///x.db", "MLFLOW_RUN_ID": "r1", "MLFLOW_EXPERIMENT_ID": "7"}


def plan_of(path, **kwargs):
    return build_plan(load(path).model, BUILTIN["local"], name="j1", backend="local", root="/w/j1",
                      tracking_env=TRACKING, master_port=29500, **kwargs)


def test_command_rendering_and_environment_contract(write_yaml, tmp_path):
    (tmp_path / "data dir").mkdir()
    plan = plan_of(write_yaml("""
        command: python t.py --d ${{inputs.d}} --n ${{inputs.n}} --o ${{outputs.model}} --s ${{inputs.s}}
        inputs:
          d: {type: uri_folder, path: "data dir"}
          n: 3
          s: "x; rm -rf /"
        outputs:
          model:
        environment_variables:
          AZURE_ML_INPUT_n: "overridden"
          MLFLOW_EXPERIMENT_ID: "from-yaml"
    """))
    (process,) = plan.processes
    assert shlex.split(process.command) == ["python", "t.py", "--d", "/w/j1/inputs/d", "--n", "3", "--o",
                                            "/w/j1/named-outputs/model", "--s", "x; rm -rf /"]
    env = process.env
    assert env["AZURE_ML_INPUT_d"] == "/w/j1/inputs/d"
    assert env["AZURE_ML_INPUT_n"] == "overridden"  # an explicit environment_variables entry wins
    assert env["AZURE_ML_OUTPUT_model"] == "/w/j1/named-outputs/model"
    assert env["MLFLOW_RUN_ID"] == "r1" and env["MLFLOW_TRACKING_URI"] == "sqlite:///x.db"
    assert env["MLFLOW_EXPERIMENT_ID"] == "from-yaml"
    assert process.log == "user_logs/std_log.txt"
    (d,) = [i for i in plan.inputs if i.name == "d"]
    assert d.kind == "local" and d.source == str(tmp_path / "data dir") and d.target == "inputs/d"
    assert json.dumps(plan.to_dict())


def test_optional_group_dropped_in_the_plan(write_yaml):
    plan = plan_of(write_yaml("""
        command: python t.py $[[--depth ${{inputs.depth}}]] $[[--lr ${{inputs.lr}}]]
        inputs:
          depth: {type: integer, optional: true}
          lr: 0.1
    """))
    assert shlex.split(plan.processes[0].command) == ["python", "t.py", "--lr", "0.1"]


def test_pytorch_ranks(write_yaml):
    plan = plan_of(write_yaml("""
        command: python train.py
        distribution: {type: pytorch, process_count_per_instance: 2}
        resources: {instance_count: 2}
    """))
    ranks = [(p.rank, p.node_rank, p.local_rank, p.env["RANK"], p.env["LOCAL_RANK"], p.env["NODE_RANK"],
              p.env["WORLD_SIZE"], p.env["MASTER_PORT"]) for p in plan.processes]
    assert ranks == [(0, 0, 0, "0", "0", "0", "4", "29500"), (1, 0, 1, "1", "1", "0", "4", "29500"),
                     (2, 1, 0, "2", "0", "1", "4", "29500"), (3, 1, 1, "3", "1", "1", "4", "29500")]
    assert {p.log for p in plan.processes} == {f"user_logs/std_log_process_{r}.txt" for r in range(4)}


def test_tensorflow_config(write_yaml):
    plan = plan_of(write_yaml("""
        command: python train.py
        distribution: {type: tensorflow, worker_count: 2, parameter_server_count: 1}
    """))
    configs = [json.loads(p.env["TF_CONFIG"]) for p in plan.processes]
    assert configs[0]["cluster"] == {"worker": ["127.0.0.1:29500", "127.0.0.1:29501"], "ps": ["127.0.0.1:29502"]}
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1},
                                            {"type": "ps", "index": 0}]


def test_mpi_is_one_launcher(write_yaml):
    plan = plan_of(write_yaml("""
        command: python hello.py --x "a b"
        distribution: {type: mpi, process_count_per_instance: 3}
    """))
    (launcher,) = plan.processes
    words = shlex.split(launcher.command)
    assert words[0] == "mpirun" and words[words.index("-np") + 1] == "3"
    assert words[-2:] == ["-c", 'python hello.py --x "a b"']


@pytest.mark.parametrize("path", ["azureml:iris:1", "azureml://datastores/x/paths/y", "wasbs://c@a.blob/x"])
def test_azure_storage_inputs_are_refused_with_the_way_out(write_yaml, path):
    with pytest.raises(SubmitError, match="local path, an http\\(s\\) URL or an MLflow URI"):
        plan_of(write_yaml(f"command: cat ${{{{inputs.d}}}}\ninputs:\n  d: {{type: uri_file, path: '{path}'}}\n"))


def test_url_and_mlflow_inputs(write_yaml):
    plan = plan_of(write_yaml("""
        command: cat ${{inputs.u}} ${{inputs.m}}
        inputs:
          u: {type: uri_file, path: "http://127.0.0.1:9/data/iris.csv?sig=1"}
          m: {type: mlflow_model, path: "runs:/abc/model"}
          direct: {type: uri_file, path: "https://example.invalid/x.csv", mode: direct}
    """))
    kinds = {i.name: (i.kind, i.value) for i in plan.inputs}
    assert kinds == {"u": ("url", "/w/j1/inputs/u/iris.csv"), "m": ("mlflow", "/w/j1/inputs/m"),
                     "direct": ("direct", "https://example.invalid/x.csv")}


def test_the_run_joins_every_rank_last_and_the_jobs_own_variables_still_win(write_yaml):
    """The run is created while the backend prepares: its identity is added to the plan afterwards."""
    plan = build_plan(load(write_yaml("""
        command: python train.py
        distribution: {type: pytorch, process_count_per_instance: 2}
        environment_variables: {MLFLOW_EXPERIMENT_ID: "mine"}
    """)).model, BUILTIN["local"], name="j1", backend="local", root="/w/j1",
        tracking_env={"MLFLOW_TRACKING_URI": "sqlite:///x.db"}, master_port=29500)
    assert all("MLFLOW_RUN_ID" not in p.env for p in plan.processes)
    joined = with_run(plan, {"MLFLOW_RUN_ID": "r9", "MLFLOW_EXPERIMENT_ID": "3"})
    assert [(p.env["MLFLOW_RUN_ID"], p.env["MLFLOW_EXPERIMENT_ID"]) for p in joined.processes] == [("r9", "mine")] * 2
    assert [p.env["RANK"] for p in joined.processes] == ["0", "1"]  # the rest as planned
