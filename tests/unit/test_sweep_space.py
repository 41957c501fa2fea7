"""The ten distributions with Azure's semantics, and the samplers' determinism."""

import math
import random
from collections import Counter

import pytest

from airflow_mljobs.sweep import BayesianSampler, GridSampler, RandomSampler, TrialRecord, sample_dimension
from airflow_mljobs.sweep.space import from_unit

N = 4000


def draws(dimension, n=N):
    rng = random.Random(7)
    return [sample_dimension(dimension, rng) for _ in range(n)]


def test_randint_is_zero_to_upper_exclusive():
    values = draws({"type": "randint", "upper": 4})
    assert set(values) == {0, 1, 2, 3}


def test_uniform_and_quniform():
    assert all(0.5 <= v < 0.9 for v in draws({"type": "uniform", "min_value": 0.5, "max_value": 0.9}))
    values = draws({"type": "quniform", "min_value": 0, "max_value": 10, "q": 2})
    assert set(values) <= {0, 2, 4, 6, 8, 10} and all(isinstance(v, int) for v in values)


def test_loguniform_bounds_are_exponents():
    values = draws({"type": "loguniform", "min_value": math.log(0.001), "max_value": math.log(1)})
    assert all(0.001 <= v <= 1 for v in values)
    assert sum(v < 0.01 for v in values) / N == pytest.approx(1 / 3, abs=0.05)  # log-uniform: a third per decade
    q = draws({"type": "qloguniform", "min_value": 0, "max_value": math.log(100), "q": 5})
    assert all(v % 5 == 0 for v in q) and min(q) >= 0 and max(q) <= 100


def test_normal_family():
    values = draws({"type": "normal", "mu": 10, "sigma": 2})
    assert sum(values) / N == pytest.approx(10, abs=0.2)
    assert all(v > 0 for v in draws({"type": "lognormal", "mu": 0, "sigma": 1}))
    assert all(v % 3 == 0 for v in draws({"type": "qnormal", "mu": 10, "sigma": 5, "q": 3}))
    assert all(v % 2 == 0 and v >= 0 for v in draws({"type": "qlognormal", "mu": 1, "sigma": 1, "q": 2}))


def test_choice_and_conditional_choice():
    counts = Counter(draws({"type": "choice", "values": ["a", "b", "c"]}))
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) > N / 4
    nested = {"type": "choice", "values": [{"model": "svm", "C": {"type": "uniform", "min_value": 1, "max_value": 2}},
                                           {"model": "tree", "depth": {"type": "randint", "upper": 3}}]}
    for value in draws(nested, 200):
        if value["model"] == "svm":
            assert 1 <= value["C"] < 2 and "depth" not in value
        else:
            assert value["depth"] in (0, 1, 2)


def test_from_unit_quantiles():
    assert from_unit({"type": "uniform", "min_value": 0, "max_value": 10}, 0.25) == 2.5
    assert from_unit({"type": "choice", "values": [1, 2, 3, 4]}, 0.99) == 4


SPACE = {"lr": {"type": "loguniform", "min_value": -5, "max_value": 0}, "k": {"type": "choice", "values": ["rbf", "linear"]}}


BAYES_SPACE = {"lr": {"type": "uniform", "min_value": 0, "max_value": 1},
               "n": {"type": "quniform", "min_value": 0, "max_value": 10, "q": 1}, "k": SPACE["k"]}


@pytest.mark.parametrize("sampler, space", [(RandomSampler(3), SPACE), (RandomSampler(3, "sobol"), SPACE),
                                            (BayesianSampler(3), BAYES_SPACE)])
def test_seeded_samplers_give_the_same_trial_anywhere(sampler, space):
    history = tuple(TrialRecord(i, RandomSampler(1).suggest(space, (), i), "Completed", (i * 0.1,)) for i in range(12))
    history += (TrialRecord(12, RandomSampler(2).suggest(space, (), 12), "Running"),)
    first = [sampler.suggest(space, history, i) for i in range(13, 16)]
    again = [sampler.suggest(space, history, i) for i in range(13, 16)]
    assert first == again
    assert len({str(p) for p in first}) == 3


def test_sobol_covers_the_space_more_evenly_than_random():
    space = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}
    sobol = sorted(RandomSampler(0, "sobol").suggest(space, (), i)["x"] for i in range(16))
    assert max(b - a for a, b in zip(sobol, sobol[1:])) < 0.2


def test_grid_is_exactly_the_product():
    space = {"b": {"type": "choice", "values": [1, 2]}, "a": {"type": "choice", "values": ["x", "y", "z"]}}
    points = [GridSampler().suggest(space, (), i) for i in range(6)]
    assert len({tuple(sorted(p.items())) for p in points}) == 6
    assert points[0] == {"a": "x", "b": 1}
    with pytest.raises(IndexError):
        GridSampler().suggest(space, (), 6)


def test_bayesian_moves_toward_good_regions():
    space = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}
    history = []
    for i in range(40):
        params = BayesianSampler(0, "minimize").suggest(space, tuple(history), i)
        history.append(TrialRecord(i, params, "Completed", ((params["x"] - 0.3) ** 2,)))
    late = [abs(t.params["x"] - 0.3) for t in history[25:]]
    assert sorted(late)[len(late) // 2] < 0.15  # uniform draws would sit 0.29 away on average


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_running_trial_steers_the_next_bayesian_suggestion_elsewhere(seed):
    space = {"x": {"type": "uniform", "min_value": 0, "max_value": 1},
             "y": {"type": "uniform", "min_value": 0, "max_value": 1}}

    def bowl(p):
        return (p["x"] - 0.3) ** 2 + (p["y"] - 0.7) ** 2

    history = tuple(TrialRecord(i, p, "Completed", (bowl(p),))
                    for i, p in ((i, RandomSampler(seed).suggest(space, (), i)) for i in range(10)))
    sampler = BayesianSampler(seed, "minimize")
    first = sampler.suggest(space, history, 10)
    blind = sampler.suggest(space, history, 11)  # the same model, not told about the first
    told = sampler.suggest(space, history + (TrialRecord(10, first, "Running"),), 11)

    def distance(p, q):
        return ((p["x"] - q["x"]) ** 2 + (p["y"] - q["y"]) ** 2) ** 0.5

    assert distance(first, blind) < 0.01  # without the running trial, the second would go where the first went
    assert distance(first, told) > 0.05


def test_only_a_learning_sampler_waits_for_the_earlier_wave(tmp_path):
    from airflow_mljobs.engine import Engine
    from airflow_mljobs.spec import load_job_dict
    from airflow_mljobs.sweeps import Sweep, TrialSummary

    def sweep(algorithm):
        job = {"type": "sweep", "trial": {"command": "echo ${{search_space.x}}"}, "sampling_algorithm": algorithm,
               "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
               "objective": {"goal": "maximize", "primary_metric": "m"},
               "limits": {"max_total_trials": 9, "max_concurrent_trials": 3}}
        return Sweep(Engine(home=tmp_path), load_job_dict(job), name="s")

    trials = [TrialSummary(0, "s_0", "r0", {}, "Completed"), TrialSummary(1, "s_1", "r1", {}, "Running"),
              TrialSummary(3, "s_3", "r3", {}, "Running")]
    assert sweep("bayesian").waits_for(2, trials) == []  # the same wave as trial 1
    assert sweep("bayesian").waits_for(4, trials) == [1]  # the next wave waits for trial 1, not for its own trial 3
    assert sweep("bayesian").waits_for(6, trials) == [1, 3]
    assert sweep("random").waits_for(6, trials) == []  # independent draws: no reason to wait
    # a trial of an earlier wave not recorded yet is waited for when it will still start, not otherwise
    assert sweep("bayesian").waits_for(4, trials, still_to_start=[2, 4, 5]) == [1, 2]
    assert sweep("bayesian").waits_for(4, trials[:2]) == [1]
