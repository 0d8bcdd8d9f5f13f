"""Markdown and CSV tables shaped like the paper's Tables 2/4/5 and Appendix E."""

from __future__ import annotations

import datetime as _dt
import math

import pandas as pd

from tfmedbench.study import stats
from tfmedbench.study.report.data import METRIC_NAMES, SCALE

BETTER, WORSE = "▲", "▼"


def fmt_ms(mean, std, digits=2):
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mark(row):
    if row is None or not row.get("significant"):
        return ""
    return BETTER if row["direction"] > 0 else WORSE


def fmt_p(p):
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def task_header(res, task):
    metric = METRIC_NAMES.get(res.metrics.get(task), res.metrics.get(task) or "?")
    return f"{task} ({metric})"


def score_cells(res, paper=None):
    """{weights: {column: text}} of the scores table (plus paper reference columns)."""
    table = {}
    for w in res.weights:
        label = f"{w} (baseline)" if w == res.baseline else w
        row = {"Initialization": label}
        for task in res.tasks:
            r = res.row(task, w)
            if r is None:
                text = "–"
            else:
                text = fmt_ms(r["mean"], r["std"])
                if w in res.best_weights(task):
                    text = f"**{text}**"
                text = f"{text} {mark(r)}".strip()
                if r["n"] != res.n_range()[1]:
                    text += f" (n={r['n']})"
            row[task_header(res, task)] = text
            if paper is not None:
                ref = paper.get((task, w))
                row[f"{task} paper"] = fmt_ms(ref["mean"], ref["std"]) if ref else "–"
        table[w] = row
    return table


def markdown_table(rows):
    rows = list(rows)
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + [":---:"] * (len(cols) - 1)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def comparison_rows(res):
    """Difference to the baseline, t, df, raw and adjusted p for every comparison."""
    out = []
    for task in res.tasks:
        for w in res.weights:
            r = res.row(task, w)
            if r is None or w == res.baseline:
                continue
            out.append(
                {
                    "Task": task,
                    "Initialization": w,
                    "n": r["n"],
                    "Δ mean (pp)": "–" if math.isnan(r["diff"]) else f"{r['diff']:+.2f}",
                    "t": "–" if math.isnan(r["t"]) else f"{r['t']:.2f}",
                    "df": "–" if math.isnan(r["df"]) else f"{r['df']:.1f}",
                    "p": fmt_p(r["p"]),
                    "p adj.": fmt_p(r["p_adj"]),
                    "Sig.": mark(r),
                }
            )
    return out


def convergence_cells(res):
    table = []
    for w in res.weights:
        row = {"Initialization": f"{w} (baseline)" if w == res.baseline else w}
        for task in res.tasks:
            s = stats.summarize(res.scores(task, w, "epochs_run"))
            b = stats.summarize(res.scores(task, w, "best_epoch"))
            row[task] = (
                "–" if s["n"] == 0 else f"{fmt_ms(s['mean'], s['std'], 1)} (best {b['mean']:.1f})"
            )
        table.append(row)
    return table


def header_lines(res, paper_path=None):
    lo, hi = res.n_range()
    n_text = f"n = {hi} runs per cell" if lo == hi else f"n = {lo}–{hi} runs per cell"
    metric_parts = []
    for task in res.tasks:
        metric = res.metrics.get(task)
        if metric == "dice":
            from tfmedbench.metrics import DICE_THRESHOLD, EMPTY_MASK_RULE

            metric_parts.append(
                f"{task}: Dice, mean over test images at threshold {DICE_THRESHOLD} "
                f"(empty-mask rule: {EMPTY_MASK_RULE})"
            )
        elif metric == "auc":
            metric_parts.append(
                f"{task}: AUC (ROC), mean over the scored classes; a class with one label value "
                "in the test split has no AUC and is left out"
            )
        else:
            metric_parts.append(f"{task}: {metric}")
    corr = stats.CORRECTION_NAMES[res.correction]
    if res.correction == "holm":
        corr += f" (m = {res.m})"
    lines = [
        f"- {n_text}; cells are mean ± standard deviation (ddof = 1) of the test score "
        f"× {SCALE:g} (percent). Seeds: run r uses seed base_seed + r for every cell.",
        f"- Test: {stats.TEST_NAMES[res.test]} of each initialization against the baseline "
        f"**{res.baseline}**, per task; {corr}; α = {res.alpha:g}.",
        f"- Marks: {BETTER} significantly better, {WORSE} significantly worse than the baseline "
        "(adjusted p ≤ α); **bold**: best mean in the column; (n=k): a cell with fewer runs.",
        "- Metrics: " + "; ".join(metric_parts) + ".",
    ]
    if paper_path:
        lines.append(
            f"- 'paper' columns: published reference numbers read from `{paper_path}` "
            "(user-supplied transcription; not produced by this run)."
        )
    return lines


def footer_lines(res):
    versions = res.versions()
    vtext = ", ".join(f"{k} {'/'.join(v)}" for k, v in versions.items()) or "not recorded"
    import tfmedbench

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Versions of the runs: {vtext}.",
        f"Generated {now} by tfmedbench {tfmedbench.__version__} (`tfmedbench report`) from "
        f"`results.jsonl` ({len(res.all_records)} records, {len(res.ok)} successful and "
        f"{len(res.failed)} failed cells). Generated file: do not edit by hand.",
    ]


def write_csvs(res, out_dir, paper=None):
    """Tidy statistics, the wide formatted table and the convergence table as CSV."""
    import os

    long_rows = []
    for (task, w), r in res.rows.items():
        ep = stats.summarize(res.scores(task, w, "epochs_run"))
        be = stats.summarize(res.scores(task, w, "best_epoch"))
        row = {
            "task": task,
            "weights": w,
            "metric": res.metrics.get(task),
            "baseline": res.baseline,
            "is_baseline": r["is_baseline"],
            "n": r["n"],
            "mean": r["mean"],
            "std": r["std"],
            "std_ddof0": r["std_ddof0"],
            "ci95_low": r["ci_low"],
            "ci95_high": r["ci_high"],
            "diff_to_baseline": r["diff"],
            "t": r["t"],
            "df": r["df"],
            "p": r["p"],
            "p_adjusted": r["p_adj"],
            "significant": r["significant"],
            "direction": r["direction"],
            "test": res.test,
            "correction": res.correction,
            "alpha": res.alpha,
            "epochs_run_mean": ep["mean"],
            "epochs_run_std": ep["std"],
            "best_epoch_mean": be["mean"],
            "best_epoch_std": be["std"],
        }
        if paper is not None:
            ref = paper.get((task, w)) or {}
            row["paper_mean"] = ref.get("mean", math.nan)
            row["paper_std"] = ref.get("std", math.nan)
        long_rows.append(row)
    pd.DataFrame(long_rows).to_csv(os.path.join(out_dir, "summary.csv"), index=False)
    wide = [
        {k: v.replace("**", "") for k, v in row.items()}
        for row in score_cells(res, paper).values()
    ]
    pd.DataFrame(wide).to_csv(os.path.join(out_dir, "table_scores.csv"), index=False)
    pd.DataFrame(convergence_cells(res)).to_csv(
        os.path.join(out_dir, "table_convergence.csv"), index=False
    )
    runs = res.frame.sort_values(["task", "weights", "seed"])
    runs.to_csv(os.path.join(out_dir, "runs.csv"), index=False)
