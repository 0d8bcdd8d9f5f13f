"""Per-run evidence for the report: bootstrap CIs from metrics.json, paired tests from
predictions.npz. Both read the run folders of the store's successful runs."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from tfmedbench.errors import UserError
from tfmedbench.study import paired, stats

MAX_METRICS_BYTES = 64 << 20
MAX_NOTES = 6


def read_ci(run_dir):
    """(ci dict | None, note | None) of one run: metrics.json["ci"]["score"] when well formed."""
    path = os.path.join(run_dir, "metrics.json") if run_dir else None
    if not path or not os.path.isfile(path):
        return None, None
    try:
        if os.path.getsize(path) > MAX_METRICS_BYTES:
            return None, f"{path}: larger than {MAX_METRICS_BYTES >> 20} MiB, not read"
        with open(path, encoding="utf-8") as fh:
            ci = json.load(fh).get("ci")
    except (OSError, ValueError, AttributeError) as err:
        return None, f"{path}: unreadable ({type(err).__name__})"
    if ci is None:
        return None, None
    score = ci.get("score") if isinstance(ci, dict) else None
    fields = ("estimate", "low", "high")
    if not isinstance(score, dict) or not all(_is_num(score.get(k)) for k in fields):
        return None, f'{path}: "ci" has no numeric score estimate/low/high'
    return ci, None


def _is_num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def ci_rows(res):
    """(rows, notes): one row per successful run of the slice that has a stored CI."""
    rows, notes = [], []
    frame = res.frame.sort_values("seed")
    for task in res.tasks:
        use_global = res.metrics.get(task) == "dice" and res.dice_score(task) == "global"
        for w in res.weights:
            sel = frame[(frame.task == task) & (frame.weights == w)]
            for seed, run_dir, stored in zip(sel.seed, sel.run_dir, sel.score):
                ci, note = read_ci(res.study.run_path(run_dir))
                if note:
                    notes.append(note)
                if ci is None:
                    continue
                score = (ci.get("dice_global") if use_global else None) or ci["score"]
                if abs(score["estimate"] - stored) > 1e-6:
                    notes.append(f"{run_dir}: the CI's estimate {score['estimate']:.6f} is not the "
                                 f"stored score {stored:.6f}; check its metrics.json")  # fmt: skip
                rows.append(dict(
                    task=task, weights=w, seed=int(seed), estimate=score["estimate"],
                    low=score["low"], high=score["high"], n_used=score.get("n_used"),
                    n_boot=ci.get("n_boot"), level=ci.get("level"), of=score.get("of", ""),
                    n_images=ci.get("n_images"),
                ))  # fmt: skip
    return rows, notes


def _scored(task):
    try:
        from tfmedbench.tasks import get_recipe

        return list(get_recipe(task).scored)
    except Exception:  # noqa: BLE001 - an unknown task code: score over every class
        return None


def _load(paths, notes):
    out = {}
    for seed, run_dir in paths.items():
        try:
            out[seed] = paired.read_predictions(os.path.join(run_dir, "predictions.npz"))
        except UserError as err:
            notes.append(str(err))
    return out


def paired_rows(res):
    """(rows, notes): the paired tests of every initialization vs the baseline, per task.

    Each row: task, weights, kind, seeds, per_seed (list of results), pooled (result), p (the
    pooled p-value: DeLong on the mean AUC, or Wilcoxon on per-image Dice), p_adj, significant.
    """
    rows, notes = [], []
    for task in res.tasks:
        base_paths = res.run_paths(task, res.baseline)
        others = [w for w in res.weights if w != res.baseline and res.run_paths(task, w)]
        if not base_paths or not others:
            continue
        base = _load(base_paths, notes)
        for w in others:
            runs = _load({s: p for s, p in res.run_paths(task, w).items() if s in base}, notes)
            try:
                result = paired.compare_runs(runs, base, _scored(task))  # other - baseline
            except UserError as err:
                notes.append(str(err))
                continue
            if result is None:
                continue
            primary = _primary(result["kind"], res.dice_score(task), result["pooled"])
            rows.append(dict(task=task, weights=w, kind=result["kind"], primary=primary,
                             seeds=result["seeds"], per_seed=result["per_seed"],
                             pooled=result["pooled"], p=p_of(primary, result["pooled"])))  # fmt: skip
    pvals = [r["p"] for r in rows]
    adjusted = stats.holm(pvals) if res.correction == "holm" else np.asarray(pvals, np.float64)
    for row, p_adj in zip(rows, adjusted):
        row["p_adj"] = float(p_adj)
        row["significant"] = bool(np.isfinite(p_adj) and p_adj <= res.alpha)
    return rows, _collapse(notes)


PRIMARY_NAMES = {
    "auc": "DeLong (mean AUC)",
    "dice": "Wilcoxon (per-image Dice)",
    "dice_global": "paired bootstrap (global Dice)",
}


def _primary(kind, dice_score, pooled):
    """Which test of a paired result matches the task's score."""
    if kind == "classification":
        return "auc"
    return "dice_global" if dice_score == "global" and "global" in pooled else "dice"


def _part(primary, result):
    if result is None:
        return None
    if primary == "auc":
        return result.get("mean")
    return result.get("global") if primary == "dice_global" else result


def p_of(primary, result):
    part = _part(primary, result)
    if part is None:
        return math.nan
    return part["wilcoxon_p"] if primary == "dice" else part["p"]


def diff_of(primary, result):
    """The other - baseline difference of the score a paired result tests."""
    part = _part(primary, result)
    return math.nan if part is None else part["diff"]


def _collapse(notes):
    notes = list(dict.fromkeys(notes))
    if len(notes) > MAX_NOTES:
        notes = notes[:MAX_NOTES] + [f"... and {len(notes) - MAX_NOTES} more such messages"]
    return notes
