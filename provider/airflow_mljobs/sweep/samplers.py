"""Samplers: `suggest(space, history, index)` returns trial `index`'s hyperparameters.

Each is a deterministic function of its inputs and the seed, so a trial computes its own parameters wherever
it runs (an Airflow mapped task instance, a CLI worker), and running trials count as pending.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass

from ..loading import collector_paused
from .history import TrialRecord
from .policies import is_finite
from .space import from_unit, grid_points, sample_dimension


@dataclass(frozen=True)
class RandomSampler:
    """Independent draws (`rule: random`) or a scrambled Sobol sequence (`rule: sobol`), seeded.

        sampling_algorithm: {type: random, seed: 42, rule: sobol}
    """

    seed: int | None = None
    rule: str = "random"
    needs_history = False  # a trial's draw depends on its index and the seed only

    def suggest(self, space: dict, history: tuple[TrialRecord, ...], index: int) -> dict:
        seed = self.seed if self.seed is not None else 0
        rng = random.Random(f"{seed}:{index}")
        names = sorted(space)
        if self.rule != "sobol":
            return {name: sample_dimension(space[name], rng) for name in names}
        from scipy.stats import qmc

        engine = qmc.Sobol(d=len(names), scramble=True, seed=seed)
        if index:
            engine.fast_forward(index)
        point = engine.random(1)[0]
        return {name: from_unit(space[name], float(u), rng) for name, u in zip(names, point)}


@dataclass(frozen=True)
class GridSampler:
    """Every combination of the choices, in a stable order; trial `index` is the `index`-th point."""

    needs_history = False

    def suggest(self, space: dict, history: tuple[TrialRecord, ...], index: int) -> dict:
        points = grid_points(space)
        if index >= len(points):
            raise IndexError(f"the grid has {len(points)} points; there is no trial {index}")
        return points[index]


@dataclass(frozen=True)
class BayesianSampler:
    """Gaussian-process Bayesian optimization (Optuna's GPSampler) over the history, rebuilt for every call.

    Chosen by `benchmarks/bench_sweep.py` (BENCHMARKS.md). Running trials enter the model as if they had ended
    at the best value seen so far (an optimistic constant liar), so a wave of trials spreads out. The first 10
    trials are seeded random draws. Azure's bayesian sampling takes choice, uniform and quniform; quniform is
    searched as uniform and rounded. Needs PyTorch (the `bayesian` extra).
    """

    seed: int | None = None
    goal: str = "maximize"
    needs_history = True

    def __post_init__(self) -> None:
        require_torch()

    def suggest(self, space: dict, history: tuple[TrialRecord, ...], index: int) -> dict:
        with collector_paused():
            import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = {name: _optuna_distribution(space[name]) for name in sorted(space)}
        study = optuna.create_study(direction=self.goal, sampler=_gp_sampler((self.seed or 0) * 100_003 + index))
        finished = [t.final for t in history if t.status == "Completed" and is_finite(t.final)]  # NaN, inf never rank
        lie = (max if self.goal == "maximize" else min)(finished) if finished else None
        for trial in history:
            if trial.index == index:
                continue
            params = {name: _as_optuna(space[name], trial.params.get(name)) for name in distributions}
            if any(v is None for v in params.values()):
                continue
            if trial.status == "Completed" and is_finite(trial.final):
                value = trial.final
            elif trial.status == "Running" and lie is not None:
                value = lie  # pending: as good as the best so far, so nothing more is expected there
            else:
                continue
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
        ask = study.ask(distributions)
        return {name: _from_optuna(space[name], ask.params[name]) for name in distributions}


def _gp_sampler(seed: int):
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)


BAYESIAN_NEEDS_TORCH = ("bayesian sampling uses Optuna's Gaussian-process sampler, which needs PyTorch: "
                        "pip install 'airflow-provider-mljobs[bayesian]'")


def require_torch() -> None:
    """Fail before any trial starts, not at the eleventh, when the bayesian sampler cannot run here. Looked up,
    not imported: importing PyTorch takes a second, which the tasks that never suggest need not pay."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError(BAYESIAN_NEEDS_TORCH)


def _optuna_distribution(dimension: dict):
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if dimension["type"] == "choice":
        return CategoricalDistribution(list(range(len(dimension["values"]))))
    return FloatDistribution(dimension["min_value"], dimension["max_value"])


def _as_optuna(dimension: dict, value):
    if value is None:
        return None
    if dimension["type"] == "choice":
        return dimension["values"].index(value) if value in dimension["values"] else None
    return float(value)


def _from_optuna(dimension: dict, value):
    if dimension["type"] == "choice":
        return dimension["values"][value]
    if dimension["type"] == "quniform":
        q = dimension["q"]
        rounded = round(value / q) * q
        return int(rounded) if float(q).is_integer() else rounded
    return value


def sampler_for(algorithm: dict, goal: str = "maximize"):
    kind = algorithm["type"]
    if kind == "random":
        return RandomSampler(algorithm.get("seed"), algorithm.get("rule") or "random")
    if kind == "grid":
        return GridSampler()
    if kind == "bayesian":
        return BayesianSampler(algorithm.get("seed"), goal)
    raise ValueError(f"unknown sampling algorithm {kind!r}")
