"""Azure ML's ten distributions, with Azure's semantics, drawn from a uniform number in [0, 1).

randint(upper) is [0, upper); loguniform and qloguniform bounds are exponents (exp(uniform(min, max)));
q-variants round to a multiple of q; a `choice` over mappings is a conditional space: the chosen mapping's
own distributions are drawn too. Drawing from a uniform number lets random, Sobol and grid share one path.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist


def sample_dimension(dimension: dict, rng: random.Random):
    """One value of `dimension`, drawn with `rng` (a nested choice draws its inner distributions too)."""
    return from_unit(dimension, rng.random(), rng)


def from_unit(dimension: dict, u: float, rng: random.Random | None = None):
    """The value of `dimension` at the quantile `u` in [0, 1); nested draws use `rng`."""
    kind = dimension["type"]
    u = min(max(u, 0.0), 1.0 - 1e-12)
    if kind == "choice":
        values = dimension["values"]
        option = values[int(u * len(values))]
        if isinstance(option, dict):
            inner = rng or random.Random(u)
            return {k: sample_dimension(v, inner) if isinstance(v, dict) and "type" in v else v
                    for k, v in option.items()}
        return option
    if kind == "randint":
        return int(u * dimension["upper"])
    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        low, high = dimension["min_value"], dimension["max_value"]
        value = low + u * (high - low)
        if kind.endswith("loguniform"):
            value = math.exp(value)
        return _round(value, dimension.get("q")) if kind.startswith("q") else value
    if kind in ("normal", "qnormal", "lognormal", "qlognormal"):
        value = NormalDist(dimension["mu"], dimension["sigma"]).inv_cdf(max(u, 1e-12))
        if kind.endswith("lognormal"):
            value = math.exp(value)
        return _round(value, dimension.get("q")) if kind.startswith("q") else value
    raise ValueError(f"unknown distribution type {kind!r}")


def _round(value: float, q: float) -> float:
    rounded = round(value / q) * q
    return int(rounded) if float(q).is_integer() and float(rounded).is_integer() else rounded


def grid_points(space: dict) -> list[dict]:
    """Every combination of the choices of a grid space, in a stable order (names sorted, values as given)."""
    names = sorted(space)
    points = [{}]
    for name in names:
        points = [{**point, name: value} for point in points for value in space[name]["values"]]
    return points
