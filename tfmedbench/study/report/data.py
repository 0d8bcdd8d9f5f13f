"""Load a sweep's results store into tidy frames: one slice per (protocol, label fraction).

A record may carry the sweep axes `protocol` ("finetune", "linear", "frozen-encoder") and
`label_fraction` (with `label_subset` "fixed" | "per-run" and `n_train`); a record without them
is ("finetune", 1.0). Each (protocol, label_fraction) is its own table: statistics, baseline
comparisons and multiple-comparison families never mix slices.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from tfmedbench.errors import UserError
from tfmedbench.study import stats
from tfmedbench.study.store import ResultsStore, resolve
from tfmedbench.study.config import load_sweep_json

# Column order of the paper's tables (the order of the task recipes).
TASK_ORDER = ("ECC", "DXC14", "DXC5", "TXC", "LXS", "VFS", "PXS")
METRIC_NAMES = {"auc": "AUC", "dice": "Dice"}
SCALE = 100.0  # scores are shown in percent, as in the paper
DEFAULT_PROTOCOL, DEFAULT_FRACTION = "finetune", 1.0
PROTOCOL_ORDER = ("finetune", "linear", "frozen-encoder")
PROTOCOL_NAMES = {
    "finetune": "fine-tuning",
    "linear": "linear probe",
    "frozen-encoder": "frozen encoder",
}


def record_slice(rec):
    """(protocol, label_fraction) of a record; ("finetune", 1.0) when it has neither."""
    protocol = rec.get("protocol") or DEFAULT_PROTOCOL
    fraction = rec.get("label_fraction")
    fraction = DEFAULT_FRACTION if fraction is None else fraction
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        fraction = math.nan
    if not (0 < fraction <= 1):
        raise UserError(
            f"results.jsonl: record {rec.get('task')}/{rec.get('weights')}/seed {rec.get('seed')} "
            f"has label_fraction {rec.get('label_fraction')!r}; expected a number in (0, 1]"
        )
    return str(protocol), fraction


def fraction_text(fraction):
    return f"{100 * fraction:g}%"


def slice_title(key):
    protocol, fraction = key
    return f"{PROTOCOL_NAMES.get(protocol, protocol)}, {fraction_text(fraction)} of the training labels"


def slice_suffix(key):
    """File-name suffix of a slice: none for the default (finetune, 100%)."""
    return "" if key == (DEFAULT_PROTOCOL, DEFAULT_FRACTION) else f"_{key[0]}_{key[1]:g}"


def _slice_order(key):
    protocol, fraction = key
    rank = PROTOCOL_ORDER.index(protocol) if protocol in PROTOCOL_ORDER else len(PROTOCOL_ORDER)
    return (key != (DEFAULT_PROTOCOL, DEFAULT_FRACTION), rank, protocol, -fraction)


def _order(present, preferred):
    present = list(dict.fromkeys(present))
    ordered = [x for x in dict.fromkeys(preferred) if x in present]
    return ordered + sorted(x for x in present if x not in ordered)


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class Study:
    """Every slice of one sweep directory, with the report's statistical settings."""

    def __init__(self, sweep_dir, baseline=None, style="paper", test=None, correction=None,
                 alpha=0.05):  # fmt: skip
        try:
            settings = stats.resolve_style(style, test, correction)
        except ValueError as err:
            raise UserError(f"report: {err}") from None
        self.style, self.test = settings["style"], settings["test"]
        self.correction, self.ddof, self.alpha = settings["correction"], settings["ddof"], alpha
        self.sweep_dir = os.fspath(sweep_dir)
        store = ResultsStore(self.sweep_dir)
        if not os.path.exists(store.path):
            raise UserError(
                f"{self.sweep_dir} has no results store (results.jsonl); run "
                "`tfmedbench benchmark --output DIR ...` first"
            )
        self.all_records = store.records()
        groups = {}
        for rec in self.all_records:
            groups.setdefault(record_slice(rec), []).append(rec)
        # Resolve (first ok, else latest failure) within each slice: the same (task, weights,
        # seed) at another protocol or label fraction is another run, not a retry.
        self.records = [r for g in groups.values() for r in resolve(g).values()]
        self.ok = [r for r in self.records if r.get("status") == "ok"]
        self.failed = [r for r in self.records if r.get("status") != "ok"]
        if not self.ok:
            raise UserError(f"{store.path} holds no successful run yet; nothing to report")
        self.sweep = load_sweep_json(self.sweep_dir) or {}
        self.tasks = _order([r["task"] for r in self.ok],
                            list(self.sweep.get("tasks", [])) + list(TASK_ORDER))  # fmt: skip
        weights = _order(
            [r["weights"] for r in self.ok], [w[0] for w in self.sweep.get("weights", [])]
        )
        self.baseline = self._baseline(baseline, weights)
        self.weights = [self.baseline] + [w for w in weights if w != self.baseline]
        self.frame = pd.DataFrame([self._row(r) for r in self.ok])
        keys = sorted({record_slice(r) for r in self.ok}, key=_slice_order)
        self.slices = [StudyResults(self, key) for key in keys]

    def _baseline(self, baseline, weights):
        baseline = baseline or self.sweep.get("baseline")
        if baseline is None:
            baseline = "imagenet" if "imagenet" in weights else weights[0]
        if baseline not in weights:
            raise UserError(
                f"baseline {baseline!r} has no successful runs; initializations with results: "
                f"{', '.join(weights)}"
            )
        return baseline

    @staticmethod
    def _row(r):
        protocol, fraction = record_slice(r)
        return dict(
            task=r["task"], weights=r["weights"], seed=int(r["seed"]), score=float(r["score"]),
            metric=r.get("metric"), protocol=protocol, label_fraction=fraction,
            label_subset=r.get("label_subset"), n_train=_num(r.get("n_train")),
            epochs_run=_num(r.get("epochs_run")), best_epoch=_num(r.get("best_epoch")),
            wall_time_s=_num(r.get("wall_time_s")), run_dir=r.get("run_dir"),
            dice_score=r["extra"].get("dice_score") if isinstance(r.get("extra"), dict) else None,
        )  # fmt: skip

    @property
    def main(self):
        """The default slice (finetune, 100%) if the sweep has it, else the first."""
        return self.slices[0]

    def run_path(self, run_dir):
        if not run_dir:
            return None
        return run_dir if os.path.isabs(run_dir) else os.path.join(self.sweep_dir, run_dir)

    def versions(self):
        """{package: sorted distinct versions} over all successful runs."""
        out = {}
        for r in self.ok:
            for k, v in (r.get("versions") or {}).items():
                out.setdefault(k, set()).add(str(v))
        return {k: sorted(v) for k, v in sorted(out.items())}


class StudyResults:
    """One (protocol, label fraction) slice: its runs, order and statistics."""

    def __init__(self, study, key):
        self.study, self.key = study, key
        self.protocol, self.fraction = key
        self.sweep_dir, self.all_records = study.sweep_dir, study.all_records
        self.style, self.test, self.correction = study.style, study.test, study.correction
        self.ddof, self.alpha, self.baseline = study.ddof, study.alpha, study.baseline
        f = study.frame
        self.frame = f[(f.protocol == self.protocol) & (f.label_fraction == self.fraction)]
        self.ok = [r for r in study.ok if record_slice(r) == key]
        self.failed = [r for r in study.failed if record_slice(r) == key]
        self.tasks = [t for t in study.tasks if (self.frame.task == t).any()]
        self.weights = [w for w in study.weights if (self.frame.weights == w).any()]
        self.metrics = {
            t: self.frame.loc[self.frame.task == t, "metric"].dropna().iloc[0]
            if self.frame.loc[self.frame.task == t, "metric"].notna().any() else None
            for t in self.tasks
        }  # fmt: skip
        self.rows = self._compare()

    @property
    def title(self):
        return slice_title(self.key)

    @property
    def suffix(self):
        return slice_suffix(self.key)

    def scores(self, task, weights, column="score"):
        sel = self.frame[(self.frame.task == task) & (self.frame.weights == weights)]
        return sel.sort_values("seed")[column].tolist()

    def dice_score(self, task):
        """ "global" when the task's runs are scored by global Dice, else "per_image"."""
        values = self.frame.loc[self.frame.task == task, "dice_score"].dropna().unique()
        return "global" if "global" in values else "per_image"

    def run_paths(self, task, weights):
        """{seed: absolute run directory} of the successful runs of one cell."""
        sel = self.frame[(self.frame.task == task) & (self.frame.weights == weights)]
        return {int(s): self.study.run_path(d) for s, d in zip(sel.seed, sel.run_dir) if d}

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

    def std_of(self, summary):
        """The std the report shows (its style's ddof); NaN for a single run (no spread)."""
        if summary is None or summary["n"] < 2:
            return math.nan
        return summary["std_ddof0"] if self.ddof == 0 else summary["std"]

    @property
    def m(self):
        return stats.n_comparisons(list(self.rows.values()))

    def n_range(self):
        ns = [r["n"] for r in self.rows.values()]
        return (min(ns), max(ns)) if ns else (0, 0)

    def versions(self):
        return self.study.versions()

    def best_weights(self, task):
        """Initializations with the highest mean in `task` (ties all win)."""
        means = {w: self.rows[(task, w)]["mean"] for w in self.weights if (task, w) in self.rows}
        if not means:
            return set()
        top = max(means.values())
        return {w for w, m in means.items() if m == top}
