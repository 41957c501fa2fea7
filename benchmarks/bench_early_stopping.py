"""Median stopping on real learning curves: trial-epochs saved, and whether the best final metric survives.

The curves are real: scikit-learn's bundled digits, an MLP trained epoch by epoch with `partial_fit`, 60 random
configurations, 30 epochs each, validation accuracy after every epoch. The sweep is then replayed through the policy exactly
as the engine applies it (`sweep/policies.py` is a pure function of a trial and the history), with 4 trials
running at once: each trial's epochs interleave with the other three's, and the policy is asked after every
epoch. The baseline is the same sweep without a policy.

Run: .venv/bin/python benchmarks/bench_early_stopping.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import random
import warnings

from airflow_mljobs.sweep import MedianStoppingPolicy, RandomSampler, TrialRecord

EPOCHS = 30
CONFIGS = 60
CONCURRENT = 4
SPACE = {  # a wide, realistic search: learning rate 1e-5..1, L2 1e-6..0.1, width 4..256, batch 16..256
    "hidden": {"type": "choice", "values": [4, 8, 16, 32, 64, 128, 256]},
    "lr": {"type": "loguniform", "min_value": -11.513, "max_value": 0.0},
    "alpha": {"type": "loguniform", "min_value": -13.816, "max_value": -2.303},
    "batch": {"type": "choice", "values": [16, 32, 64, 128, 256]},
}


def learning_curve(params: dict, seed: int) -> list[float]:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=seed)
    model = MLPClassifier(hidden_layer_sizes=(params["hidden"],), learning_rate_init=params["lr"],
                          alpha=params["alpha"], batch_size=params["batch"], random_state=seed)
    rng = random.Random(seed)
    curve = []
    for _ in range(EPOCHS):
        order = list(range(len(x_train)))
        rng.shuffle(order)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)  # partial_fit of a last, smaller batch
            for start in range(0, len(order), params["batch"]):
                batch = order[start:start + params["batch"]]
                model.partial_fit(x_train[batch], y_train[batch], classes=list(range(10)))
        curve.append(model.score(x_val, y_val))
    return curve


def replay(curves: list[list[float]], policy) -> tuple[int, list[float | None]]:
    """Run the sweep through `policy`, CONCURRENT trials at a time; returns (epochs trained, final values)."""
    finals: list[float | None] = [None] * len(curves)
    progress: dict[int, int] = {}
    waiting = list(range(len(curves)))
    done: dict[int, tuple] = {}
    epochs = 0
    while waiting or progress:
        while len(progress) < CONCURRENT and waiting:
            progress[waiting.pop(0)] = 0
        for index in list(progress):  # one epoch for each running trial, in turn
            progress[index] += 1
            epochs += 1
            values = tuple(curves[index][: progress[index]])
            history = tuple([TrialRecord(i, {}, "Completed", v) for i, v in done.items()] +
                            [TrialRecord(i, {}, "Running", tuple(curves[i][:e])) for i, e in progress.items() if i != index])
            stop = policy.should_stop(TrialRecord(index, {}, "Running", values), history) if policy else None
            if stop or progress[index] == EPOCHS:
                finals[index] = values[-1] if not stop else None
                done[index] = values
                del progress[index]
    return epochs, finals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    kept = 0
    for seed in range(args.seeds):
        sampler = RandomSampler(seed)
        configs = [sampler.suggest(SPACE, (), i) for i in range(CONFIGS)]
        curves = [learning_curve(c, seed) for c in configs]
        full, full_finals = replay(curves, None)
        policy = MedianStoppingPolicy(goal="maximize", evaluation_interval=1, delay_evaluation=5)
        used, finals = replay(curves, policy)
        best_full = max(f for f in full_finals if f is not None)
        best_stopped = max(f for f in finals if f is not None)
        same = best_stopped >= best_full
        kept += same
        print(f"seed {seed}: trial-epochs {used}/{full} (saved {1 - used / full:5.1%}, target >= 25%) | best final "
              f"accuracy {best_stopped:.4f} vs {best_full:.4f} without the policy ({'kept' if same else 'LOST'})")
    print(f"best final metric kept in {kept} of {args.seeds} seeds (target: at least 4 of 5)")


if __name__ == "__main__":
    main()
