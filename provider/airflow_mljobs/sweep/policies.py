"""Early termination, exactly as Azure ML documents it.

A policy is applied to a trial at every multiple of `evaluation_interval` that is at least `delay_evaluation`,
where one interval is one logged value of the primary metric. `should_stop(trial, history)` returns the
reason to stop the trial, or None.

- bandit: stop a trial whose value at this interval is not within `slack_factor` (a ratio) or `slack_amount`
  (a distance) of the best value any trial reached by this interval. Maximizing with slack_factor 0.2 and a
  best of 0.8: stop below 0.8 / 1.2 = 0.667.
- median_stopping: stop a trial whose best value so far is worse than the median of the running averages of
  the other trials up to this interval.
- truncation_selection: stop a trial that ranks in the lowest `truncation_percentage` percent of the trials'
  values at this interval.

Non-finite values (NaN and +/-inf, a diverged loss or a metric divided by zero; and +/-1.79769e+308, which is
how MLflow's SQL stores keep an infinity) never rank: they count as logged (an interval is one logged value,
whatever it is) but are left out of every best, average, median and ranking, and a trial whose own value at an
interval is not finite gets no verdict there. A trial, or a peer, with no finite value is neither judged nor
judges.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from statistics import median

from .history import TrialRecord


@dataclass(frozen=True)
class _Policy:
    goal: str = "maximize"
    evaluation_interval: int = 1
    delay_evaluation: int = 0

    def __post_init__(self) -> None:
        if self.goal not in ("maximize", "minimize"):
            raise ValueError(f"goal={self.goal!r} is not maximize or minimize")
        if self.evaluation_interval < 0 or self.delay_evaluation < 0:
            raise ValueError(f"evaluation_interval={self.evaluation_interval} and delay_evaluation="
                             f"{self.delay_evaluation} cannot be negative")

    def due(self, interval: int) -> bool:
        """Is the policy applied at `interval` (1-based count of values)?"""
        step = max(self.evaluation_interval, 1)
        return interval >= max(self.delay_evaluation, 1) and interval % step == 0

    def better(self, a: float, b: float) -> bool:
        return a > b if self.goal == "maximize" else a < b

    def best(self, values) -> float:
        return max(values) if self.goal == "maximize" else min(values)

    def should_stop(self, trial: TrialRecord, history: tuple[TrialRecord, ...]) -> str | None:
        interval = len(trial.values)
        if interval == 0 or not self.due(interval) or not is_finite(trial.values[-1]):
            return None  # a non-finite value at this interval: nothing to judge it by
        others = [t for t in history if t.index != trial.index and finite(t.values)]
        if not others:
            return None
        return self._verdict(trial, others, interval)


@dataclass(frozen=True)
class BanditPolicy(_Policy):
    slack_factor: float | None = None
    slack_amount: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.slack_factor is None) == (self.slack_amount is None):
            raise ValueError(f"give exactly one of slack_factor={self.slack_factor} and slack_amount={self.slack_amount}")

    def threshold(self, best: float) -> float:
        if self.slack_factor is not None:
            return best / (1 + self.slack_factor) if self.goal == "maximize" else best * (1 + self.slack_factor)
        return best - self.slack_amount if self.goal == "maximize" else best + self.slack_amount

    def _verdict(self, trial, others, interval):
        value = trial.values[interval - 1]
        reached = [v for t in (trial, *others) for v in finite(t.values[:interval])]
        best = self.best(reached)
        limit = self.threshold(best)
        if self.better(limit, value):
            return (f"bandit policy at interval {interval}: {value:.6g} is outside the slack of the best "
                    f"{best:.6g} (threshold {limit:.6g})")
        return None


@dataclass(frozen=True)
class MedianStoppingPolicy(_Policy):
    def _verdict(self, trial, others, interval):
        averages = [sum(kept) / len(kept) for kept in (finite(t.values[:interval]) for t in others) if kept]
        if not averages:
            return None
        middle = median(averages)
        best = self.best(finite(trial.values[:interval]))
        if self.better(middle, best):
            return (f"median stopping policy at interval {interval}: best {best:.6g} is worse than the median "
                    f"{middle:.6g} of the other trials' running averages")
        return None


@dataclass(frozen=True)
class TruncationSelectionPolicy(_Policy):
    truncation_percentage: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.truncation_percentage <= 99:
            raise ValueError(f"truncation_percentage={self.truncation_percentage} is not between 1 and 99")

    def _verdict(self, trial, others, interval):
        value = trial.values[interval - 1]
        peers = finite(t.values[interval - 1] for t in others if len(t.values) >= interval)
        ranked = sorted([value, *peers], reverse=self.goal == "maximize")
        cut = math.floor(len(ranked) * self.truncation_percentage / 100)
        if cut and value in ranked[len(ranked) - cut:]:
            return (f"truncation selection policy at interval {interval}: {value:.6g} is in the "
                    f"lowest {self.truncation_percentage}% of {len(ranked)} trials")
        return None


def is_finite(value) -> bool:
    """Whether `value` is a number that can rank: not NaN, not infinite (and not a bool or None). MLflow's SQL
    stores keep an infinity as the largest float (+/-1.79769e+308), which reads back as such: it is infinite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and abs(value) < sys.float_info.max)


def finite(values) -> list:
    """The finite ones of `values`, in order."""
    return [v for v in values if is_finite(v)]


def policy_for(spec: dict | None, goal: str):
    if not spec:
        return None
    common = {"goal": goal, "evaluation_interval": spec.get("evaluation_interval", 1),
              "delay_evaluation": spec.get("delay_evaluation", 0)}
    if spec["type"] == "bandit":
        return BanditPolicy(**common, slack_factor=spec.get("slack_factor"), slack_amount=spec.get("slack_amount"))
    if spec["type"] == "median_stopping":
        return MedianStoppingPolicy(**common)
    if spec["type"] == "truncation_selection":
        return TruncationSelectionPolicy(**common, truncation_percentage=spec["truncation_percentage"])
    raise ValueError(f"unknown early termination policy {spec['type']!r}")
