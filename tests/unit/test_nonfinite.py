"""NaN and infinities never rank: not in a policy's verdict, not as a sweep's best trial.

MLflow's SQL stores keep an infinity as the largest float, so +/-1.79769e+308 counts as infinite too."""

import math
import sys

import pytest

from airflow_mljobs.engine import Engine
from airflow_mljobs.sweep import BanditPolicy, MedianStoppingPolicy, TrialRecord, TruncationSelectionPolicy
from airflow_mljobs.sweep.policies import finite, is_finite
from airflow_mljobs.sweeps import Sweep, TrialSummary

NAN, INF, STORED_INF = math.nan, math.inf, sys.float_info.max


def trial(index, *values, status="Running"):
    return TrialRecord(index, {}, status, tuple(values))


def test_what_counts_as_finite():
    assert [is_finite(v) for v in (0.5, -3, 1e300, NAN, INF, -INF, STORED_INF, -STORED_INF, None, True)] == [
        True, True, True, False, False, False, False, False, False, False]
    assert finite((1.0, NAN, 2.0, INF)) == [1.0, 2.0]


@pytest.mark.parametrize("poison", [INF, STORED_INF])
def test_bandit_an_infinite_best_of_a_peer_stops_nobody(poison):
    """Maximizing, a peer at inf made the threshold inf / 1.2 = inf: every trial was stopped."""
    policy = BanditPolicy(goal="maximize", slack_factor=0.2)
    history = (trial(0, poison, status="Completed"), trial(1, 0.8, status="Completed"))
    assert policy.should_stop(trial(2, 0.7), history) is None  # within 0.8 / 1.2 of the finite best
    assert policy.should_stop(trial(2, 0.6), history) is not None


def test_bandit_nan_in_histories():
    policy = BanditPolicy(goal="minimize", slack_amount=0.1)
    # a NaN first made min() return NaN, and the threshold NaN + 0.1: nothing was ever stopped
    history = (trial(0, NAN, NAN), trial(1, 0.5, 0.5))
    assert policy.should_stop(trial(2, NAN, 0.7), history) is not None
    assert policy.should_stop(trial(2, NAN, 0.55), history) is None
    assert policy.should_stop(trial(2, 0.5, NAN), history) is None  # its own NaN: no verdict at this interval
    assert policy.should_stop(trial(2, 0.5, -INF), history) is None  # nor an infinite one
    assert policy.should_stop(trial(2, 0.9), (trial(0, NAN), trial(1, INF))) is None  # no finite peer


def test_median_stopping_nan_and_inf_in_histories():
    policy = MedianStoppingPolicy(goal="maximize")
    # finite running averages of the others up to interval 2: 0.6 and 0.7 (a NaN left out of the first) -> 0.65
    others = (trial(0, 0.6, NAN), trial(1, 0.6, 0.8), trial(2, NAN, NAN), trial(3, INF, INF))
    assert policy.should_stop(trial(4, 0.4, 0.6), others) is not None
    assert policy.should_stop(trial(4, 0.4, 0.66), others) is None
    assert policy.should_stop(trial(4, 0.4, NAN), others) is None  # its own value is NaN at this interval
    # its best so far ignores its own infinity (logged at an earlier interval)
    assert policy.should_stop(trial(4, INF, 0.6), others) is not None
    assert policy.should_stop(trial(4, 0.1), (trial(0, NAN), trial(1, -INF))) is None  # no peer can judge


def test_truncation_selection_nan_and_inf_in_histories():
    policy = TruncationSelectionPolicy(goal="minimize", truncation_percentage=25)
    # a NaN peer sorted anywhere and an inf peer at the bottom changed who was in the lowest 25%
    others = (trial(0, 0.1), trial(1, 0.2), trial(2, 0.3), trial(3, NAN), trial(4, INF), trial(5, -STORED_INF))
    assert policy.should_stop(trial(9, 0.9), others) is not None  # the worst of 4 finite values
    assert policy.should_stop(trial(9, 0.25), others) is None
    assert policy.should_stop(trial(9, NAN), others) is None
    assert policy.should_stop(trial(9, INF), others) is None


def test_policies_with_only_non_finite_peers_give_no_verdict():
    peers = (trial(0, NAN, NAN), trial(1, INF, -INF))
    for policy in (BanditPolicy(slack_factor=0.1), MedianStoppingPolicy(),
                   TruncationSelectionPolicy(truncation_percentage=50)):
        assert policy.should_stop(trial(2, 0.0, 0.0), peers) is None


@pytest.fixture
def sweep(tmp_path, write_yaml):
    def make(goal="maximize"):
        path = write_yaml(f"""
            type: sweep
            trial:
              command: echo ${{{{search_space.x}}}}
            sampling_algorithm: random
            search_space: {{x: {{type: choice, values: [1, 2]}}}}
            objective: {{goal: {goal}, primary_metric: score}}
            limits: {{max_total_trials: 4}}
        """)
        engine = Engine(home=tmp_path / "ws")
        return Sweep(engine, engine.load(path), name="nonfinite")

    return make


def summary(index, *values, status="Completed"):
    return TrialSummary(index, f"nonfinite_{index}", f"run{index}", {"x": index}, status, tuple(values))


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_the_best_trial_is_the_best_finite_one(sweep, goal):
    rule = sweep(goal)
    trials = [summary(0, NAN), summary(1, 0.5), summary(2, INF), summary(3, -STORED_INF), summary(4, 0.7),
              summary(5, 0.1, status="Failed")]
    assert rule.best(trials).index == (4 if goal == "maximize" else 1)
    assert rule.best([summary(0, 0.3, NAN), summary(1, 0.2)]).index == 1  # its final value counts: NaN


def test_no_finite_value_no_best_and_it_says_why(sweep):
    rule = sweep()
    trials = [summary(0, NAN), summary(1, STORED_INF), summary(2, 0.9, status="Canceled")]
    assert rule.best(trials) is None
    assert rule.no_best(trials) == ("no best trial: no completed trial ended with a finite value of 'score' "
                                    "(trial 0: nan, trial 1: inf)")
    assert rule.no_best([summary(0, -INF), summary(1, -STORED_INF)]).endswith("(trial 0: -inf, trial 1: -inf)")
    assert rule.no_best([summary(0, 0.4, status="Failed")]) == "no best trial: no trial completed"
    assert rule.best([summary(0, 0.5), summary(1, 0.5)]).index == 0  # a tie: the earlier trial
