"""Early termination as Azure ML documents it, on small hand-made histories."""

import pytest

from airflow_mljobs.sweep import (BanditPolicy, MedianStoppingPolicy, TrialRecord, TruncationSelectionPolicy,
                                  policy_for)


def trial(index, *values, status="Running"):
    return TrialRecord(index, {}, status, tuple(values))


def test_bandit_documented_example_maximize():
    """slack_factor 0.2 with a best of 0.8 (maximize): cancel below 0.8 / 1.2 = 0.667."""
    policy = BanditPolicy(goal="maximize", slack_factor=0.2)
    best = trial(0, 0.8, status="Completed")
    assert policy.threshold(0.8) == pytest.approx(0.8 / 1.2)
    assert policy.should_stop(trial(1, 0.66), (best,)) is not None
    assert policy.should_stop(trial(1, 0.67), (best,)) is None


def test_bandit_slack_amount_and_minimize():
    policy = BanditPolicy(goal="minimize", slack_amount=0.1)
    best = trial(0, 0.5)
    assert policy.should_stop(trial(1, 0.61), (best,)) is not None
    assert policy.should_stop(trial(1, 0.59), (best,)) is None
    assert BanditPolicy(goal="minimize", slack_factor=0.2).threshold(0.5) == pytest.approx(0.6)


def test_intervals_and_delay():
    """Applied at every multiple of evaluation_interval that is at least delay_evaluation."""
    policy = BanditPolicy(goal="maximize", slack_factor=0.1, evaluation_interval=2, delay_evaluation=5)
    assert [i for i in range(1, 13) if policy.due(i)] == [6, 8, 10, 12]
    leader = trial(0, *[1.0] * 12)
    assert policy.should_stop(trial(1, *[0.1] * 5), (leader,)) is None  # interval 5: before the delay
    assert policy.should_stop(trial(1, *[0.1] * 6), (leader,)) is not None
    assert policy.should_stop(trial(1, *[0.1] * 7), (leader,)) is None  # not a multiple of 2


def test_median_stopping():
    policy = MedianStoppingPolicy(goal="maximize")
    others = (trial(0, 0.5, 0.7), trial(1, 0.6, 0.8), trial(2, 0.2, 0.3))
    # running averages of the others up to interval 2: 0.6, 0.7, 0.25 -> median 0.6
    assert policy.should_stop(trial(3, 0.4, 0.55), others) is not None
    assert policy.should_stop(trial(3, 0.4, 0.65), others) is None


def test_truncation_selection():
    policy = TruncationSelectionPolicy(goal="minimize", truncation_percentage=25)
    others = tuple(trial(i, v) for i, v in enumerate([0.1, 0.2, 0.3]))
    assert policy.should_stop(trial(9, 0.9), others) is not None  # the worst of 4: the lowest 25%
    assert policy.should_stop(trial(9, 0.25), others) is None


def test_no_verdict_without_peers_or_values():
    policy = MedianStoppingPolicy()
    assert policy.should_stop(trial(0, 0.1), ()) is None
    assert policy.should_stop(trial(0), (trial(1, 0.5),)) is None


def test_constructor_checks_name_the_argument():
    with pytest.raises(ValueError, match="slack_factor=None and slack_amount=None"):
        BanditPolicy()
    with pytest.raises(ValueError, match="truncation_percentage=100"):
        TruncationSelectionPolicy(truncation_percentage=100)
    with pytest.raises(ValueError, match="goal='up'"):
        MedianStoppingPolicy(goal="up")


def test_policy_for_reads_the_yaml_form():
    policy = policy_for({"type": "bandit", "slack_factor": 0.2, "evaluation_interval": 1, "delay_evaluation": 5},
                        "maximize")
    assert isinstance(policy, BanditPolicy) and policy.delay_evaluation == 5
    assert policy_for(None, "maximize") is None
