"""Speed of the per-run bootstrap CIs and the paired tests (metrics.py, study/paired.py).

  python benchmarks/bootstrap_ci.py                 # DXC14-sized: 25,596 images x 14 classes
  python benchmarks/bootstrap_ci.py --images 5000 --classes 5 --reps 3

Times, on synthetic predictions of the given size (prevalence 1-15% per class, like
ChestX-ray14's test split): `bootstrap_auc` with 2000 resamples; the same resamples done the
naive way (sklearn's roc_auc_score on each explicitly resampled test set, timed on 20
resamples and scaled to 2000); `bootstrap_dice` on as many images; DeLong's paired test of the
mean AUC (`paired_auc`). Medians over --reps; the naive/vectorised ratio is paired per
repetition.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from benchmarks.common import environment  # noqa: E402


def synthetic(n, k, seed=0):
    rng = np.random.default_rng(seed)
    prevalence = np.linspace(0.01, 0.15, k)
    y = (rng.random((n, k)) < prevalence).astype(np.float32)
    s = (y + rng.normal(size=(n, k))).astype(np.float32)
    return y, s, [f"c{i}" for i in range(k)]


def naive(y, s, n_boot, seed=0):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        out.append(np.mean([roc_auc_score(y[idx, k], s[idx, k]) for k in range(y.shape[1])]))
    return out


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=25596)
    parser.add_argument("--classes", type=int, default=14)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from tfmedbench import metrics
    from tfmedbench.study import paired

    y, s, names = synthetic(args.images, args.classes)
    s2 = (s + np.random.default_rng(1).normal(size=s.shape)).astype(np.float32)
    stats = np.abs(np.random.default_rng(2).normal(100, 30, size=(args.images, 3)))
    stats[:, 0] = np.minimum(stats[:, 0], stats[:, 1:].min(axis=1))
    names_ = ("bootstrap_auc (2000)", "naive sklearn loop (2000, from 20)",
              "ratio naive/vectorised", "bootstrap_dice (2000)", "paired_auc DeLong")  # fmt: skip
    rows = {name: [] for name in names_}
    for _ in range(args.reps):
        fast = timed(lambda: metrics.bootstrap_auc(y, s, names, n_boot=2000, seed=0))
        slow = timed(lambda: naive(y, s, 20)) * 100
        rows["bootstrap_auc (2000)"].append(fast)
        rows["naive sklearn loop (2000, from 20)"].append(slow)
        rows["ratio naive/vectorised"].append(slow / fast)
        rows["bootstrap_dice (2000)"].append(
            timed(lambda: metrics.bootstrap_dice(stats, n_boot=2000))
        )
        rows["paired_auc DeLong"].append(
            timed(lambda: paired.paired_auc(y >= 0.5, [s], [s2], names))
        )
    print(environment())
    print(f"{args.images} images x {args.classes} classes; medians of {args.reps} repetitions")
    for name, values in rows.items():
        unit = "x" if name.startswith("ratio") else "s"
        print(f"  {name:36s} {statistics.median(values):8.2f} {unit}")


if __name__ == "__main__":
    main()
