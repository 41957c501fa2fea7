"""Which job a submitter's try runs: the names of its tries and who owns a job, the same for every front door."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_mljobs.engine.names import Tries


def _run(tags: dict):
    return SimpleNamespace(data=SimpleNamespace(tags=tags))


def test_each_try_has_a_name_of_its_own_and_knows_the_names_before_it():
    assert Tries("train", 1).names == ["train"]
    third = Tries("train", 3)
    assert third.this_try == "train-try3"
    assert third.earlier == ["train", "train-try2"]
    assert third.names == ["train", "train-try2", "train-try3"]


def test_a_job_belongs_to_the_submitter_whose_tags_it_carries_whatever_the_try():
    owner = {"mljobs.airflow.dag_id": "d", "mljobs.airflow.run_id": "r", "mljobs.airflow.task_id": "t",
             "mljobs.airflow.try_number": "2"}
    tries = Tries("d-r-t", 2, owner)
    assert tries.owns(_run({**owner, "mljobs.airflow.try_number": "1", "mljobs.status": "Running"}))
    other = {**owner, "mljobs.airflow.run_id": "r2"}
    assert not tries.owns(_run(other))
    assert tries.owner_of(_run(other)) == "d/r2/t"
    assert not tries.owns(_run({"mljobs.status": "Running"}))
    assert tries.owner_of(_run({})) == "the command line or another tool"


def test_a_task_instance_names_its_jobs_after_its_dag_run_task_and_map_index_unless_given_a_name():
    mapped = Tries.of_task("train", "manual__2026-01-01T00:00:00", "fit", 3, 2, {})
    assert mapped.base.startswith("train-manual__2026-01-01T00-00-00-fit-3")
    assert mapped.this_try == f"{mapped.base}-try2"
    assert Tries.of_task("train", "manual__2026-01-01T00:00:00", "fit", 3, 1, {}).base == mapped.base  # stable
    assert Tries.of_task("train", "r", "fit", -1, 1, {}).base == "train-r-fit"
    assert Tries.of_task("train", "r", "fit", -1, 1, {}, name="mine").names == ["mine"]
