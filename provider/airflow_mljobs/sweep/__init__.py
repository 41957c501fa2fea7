"""Search spaces, samplers and early-termination policies: pure functions over trial histories.

No storage, no MLflow, no clock: a sampler's suggestion for trial `index` is a function of (space, history,
index, seed), so every executor computes the same trials; a policy's verdict is a function of the trial and
the history.
"""

from .history import TrialRecord
from .policies import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, policy_for
from .samplers import BayesianSampler, GridSampler, RandomSampler, sampler_for
from .space import sample_dimension

__all__ = [
    "BanditPolicy", "BayesianSampler", "GridSampler", "MedianStoppingPolicy", "RandomSampler", "TrialRecord",
    "TruncationSelectionPolicy", "policy_for", "sample_dimension", "sampler_for",
]
