"""Load a sweep's results store into the tidy frame the tables and figures are drawn from."""

from __future__ import annotations

import math
import os

import pandas as pd

from tfmedbench.study import stats
from tfmedbench.errors import UserError
from tfmedbench.study.store import ResultsStore
from tfmedbench.study.sweep import load_sweep_json

# Column order of the paper's tables (the order of the task recipes).
TASK_ORDER = ("ECC", "DXC14", "DXC5", "TXC", "LXS", "VFS", "PXS")
METRIC_NAMES = {"auc": "AUC", "dice": "Dice"}
SCALE = 100.0  # scores are shown in percent, as in the paper


class StudyResults:
    """Resolved records of one sweep directory, their order, and their statistics."""

    def __init__(self, sweep_dir, baseline=None, test="welch", correction="holm", alpha=0.05):
        if test not in stats.TESTS:
            raise UserError(f"--test must be one of {', '.join(stats.TESTS)}")
        if correction not in stats.CORRECTIONS:
            raise UserError(f"--correction must be one of {', '.join(stats.CORRECTIONS)}")
        self.sweep_dir = os.fspath(sweep_dir)
        store = ResultsStore(self.sweep_dir)
        if not os.path.exists(store.path):
            raise UserError(
                f"{self.sweep_dir} has no results store (results.jsonl); run "
                "`tfmedbench benchmark --output DIR ...` first"
            )
        self.all_records = store.records()
        resolved = store.resolved()
        self.records = list(resolved.values())
        self.ok = [r for r in self.records if r.get("status") == "ok"]
        self.failed = [r for r in self.records if r.get("status") != "ok"]
        if not self.ok:
            raise UserError(f"{store.path} holds no successful run yet; nothing to report")
        self.sweep = load_sweep_json(self.sweep_dir) or {}
        self.tasks = self._order(
            [r["task"] for r in self.ok], list(self.sweep.get("tasks", [])) + list(TASK_ORDER)
        )
        self.weights = self._order(
            [r["weights"] for r in self.ok], [w[0] for w in self.sweep.get("weights", [])]
        )
        baseline = baseline or self.sweep.get("baseline")
        if baseline is None:
            baseline = "imagenet" if "imagenet" in self.weights else self.weights[0]
        if baseline not in self.weights:
            raise UserError(
                f"baseline {baseline!r} has no successful runs; initializations with results: "
                f"{', '.join(self.weights)}"
            )
        self.baseline = baseline
        # Baseline first, then the sweep's order.
        self.weights = [baseline] + [w for w in self.weights if w != baseline]
        self.test, self.correction, self.alpha = test, correction, alpha
        self.frame = pd.DataFrame(
            [
                dict(
                    task=r["task"],
                    weights=r["weights"],
                    seed=int(r["seed"]),
                    score=float(r["score"]),
                    metric=r.get("metric"),
                    epochs_run=_num(r.get("epochs_run")),
                    best_epoch=_num(r.get("best_epoch")),
                    wall_time_s=_num(r.get("wall_time_s")),
                )
                for r in self.ok
            ]
        )
        self.metrics = {
            t: self.frame.loc[self.frame.task == t, "metric"].dropna().iloc[0]
            if (self.frame.task == t).any()
            else None
            for t in self.tasks
        }
        self.rows = self._compare()

    @staticmethod
    def _order(present, preferred):
        present = list(dict.fromkeys(present))
        ordered = [x for x in dict.fromkeys(preferred) if x in present]
        return ordered + sorted(x for x in present if x not in ordered)

    def scores(self, task, weights, column="score"):
        sel = self.frame[(self.frame.task == task) & (self.frame.weights == weights)]
        return sel.sort_values("seed")[column].tolist()

    def _compare(self):
        scores = {}
        for task in self.tasks:
            for w in self.weights:
                values = self.scores(task, w)
                if values:
                    scores[(task, w)] = [v * SCALE for v in values]
        rows = stats.compare_to_baseline(
            scores, self.baseline, test=self.test, correction=self.correction, alpha=self.alpha
        )
        return {(r["task"], r["weights"]): r for r in rows}

    def row(self, task, weights):
        return self.rows.get((task, weights))

    @property
    def m(self):
        return stats.n_comparisons(list(self.rows.values()))

    def n_range(self):
        ns = [r["n"] for r in self.rows.values()]
        return (min(ns), max(ns)) if ns else (0, 0)

    def versions(self):
        """{package: sorted distinct versions} over all successful runs."""
        out = {}
        for r in self.ok:
            for k, v in (r.get("versions") or {}).items():
                out.setdefault(k, set()).add(str(v))
        return {k: sorted(v) for k, v in sorted(out.items())}

    def best_weights(self, task):
        """Initializations with the highest mean in `task` (ties all win)."""
        means = {w: self.rows[(task, w)]["mean"] for w in self.weights if (task, w) in self.rows}
        means = {w: m for w, m in means.items() if not math.isnan(m)}
        if not means:
            return set()
        top = max(means.values())
        return {w for w, m in means.items() if m == top}


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
