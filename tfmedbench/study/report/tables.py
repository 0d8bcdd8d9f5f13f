"""Markdown and CSV tables shaped like the paper's Tables 2/4/5 and Appendix E.

Every table is preceded by a caption line that states its std, test and correction, and the
question its test answers.
"""

from __future__ import annotations

import datetime as _dt
import math
import os

import pandas as pd

from tfmedbench.study import stats
from tfmedbench.study.report import runs as runs_mod
from tfmedbench.study.report.data import METRIC_NAMES, SCALE, fraction_text

BETTER, WORSE = "▲", "▼"
Q_SEEDS = (
    "Question: would another training run of an initialization score differently from "
    "one of the baseline? (variation over training runs; the test set is fixed)"
)
Q_BOOT = (
    "Question: how much would ONE trained model's score move if the test images were "
    "drawn again? This is test-set sampling variability of one trained model, NOT training "
    "variability: another seed of the same initialization can land outside the interval."
)
Q_PAIRED = ("Question: do the two initializations' models differ on these same test images? "
            "(images paired; the trained models are taken as fixed, so training variability is "
            "not part of this test)")  # fmt: skip


def fmt_ms(mean, std, digits=2):
    if mean is None or math.isnan(mean):
        return "–"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_num(value, fmt="+.2f"):
    return "–" if value is None or not math.isfinite(value) else format(value, fmt)


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


def label(res, w):
    return f"{w} (baseline)" if w == res.baseline else w


def std_text(res):
    return stats.STD_NAMES[res.ddof]


def test_text(res):
    corr = stats.CORRECTION_NAMES[res.correction]
    if res.correction == "holm":
        corr += f" (m = {res.m})"
    return f"{stats.TEST_NAMES[res.test]} vs **{res.baseline}**; {corr}; α = {res.alpha:g}"


def _test_short(res):
    return "Student" if res.test == "student" else "Welch"


def markdown_table(rows):
    rows = list(rows)
    if not rows:
        return ""
    cols = list(rows[0])
    lines = [
        "| " + " | ".join(cols) + " |",
        "|" + "|".join(["---"] + [":---:"] * (len(cols) - 1)) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- scores
def score_caption(res):
    return (f"*Mean ± {std_text(res)} of the test score × {SCALE:g} (percent) over the runs of "
            f"each cell. Marks: {test_text(res)}.*")  # fmt: skip


def score_cells(res):
    """{weights: {column: text}} of the scores table."""
    table = {}
    for w in res.weights:
        row = {"Initialization": label(res, w)}
        for task in res.tasks:
            r = res.row(task, w)
            if r is None:
                text = "–"
            else:
                text = fmt_ms(r["mean"], res.std_of(r))
                if w in res.best_weights(task):
                    text = f"**{text}**"
                text = f"{text} {mark(r)}".strip()
                if r["n"] != res.n_range()[1]:
                    text += f" (n={r['n']})"
            row[task_header(res, task)] = text
        table[w] = row
    return table


def comparison_caption(res):
    return f"*{Q_SEEDS} Test: {test_text(res)}. Δ = mean − baseline mean (percentage points).*"


def comparison_rows(res):
    """Difference to the baseline, t, df, raw and adjusted p for every comparison."""
    out = []
    for task in res.tasks:
        for w in res.weights:
            r = res.row(task, w)
            if r is None or w == res.baseline:
                continue
            out.append({
                "Task": task, "Initialization": w, "n": r["n"], "Δ mean (pp)": fmt_num(r["diff"]),
                "t": fmt_num(r["t"], ".2f"), "df": fmt_num(r["df"], ".1f"),
                f"p ({_test_short(res)})": fmt_p(r["p"]), "p adj.": fmt_p(r["p_adj"]), "Sig.": mark(r),
            })  # fmt: skip
    return out


def convergence_caption(res):
    return (
        f"*Epochs until early stopping: mean ± {std_text(res)} over the runs; in brackets the "
        "mean epoch of the best validation loss.*"
    )


def convergence_cells(res):
    table = []
    for w in res.weights:
        row = {"Initialization": label(res, w)}
        for task in res.tasks:
            s = stats.summarize(res.scores(task, w, "epochs_run"))
            b = stats.summarize(res.scores(task, w, "best_epoch"))
            row[task] = (
                "–"
                if s["n"] == 0
                else f"{fmt_ms(s['mean'], res.std_of(s), 1)} (best {b['mean']:.1f})"
            )
        table.append(row)
    return table


# --------------------------------------------------------------------------- the paper
def paper_caption(res, reference):
    test = stats.TEST_NAMES[res.test].replace(" independent two-sample", "")
    corr = stats.CORRECTION_NAMES[res.correction].replace("in the table", "in this table")
    return (
        f"*Paper: {reference['label']}, for its protocol (fine-tuning with all training labels: "
        "this slice only); mean ± std over its n runs as printed, the std read as "
        "np.std (ddof = 0) and converted to ddof = 1 for the test. Measured: mean ± "
        f"{std_text(res)} of this sweep's runs (percent). Test: {test} from summary statistics "
        "(`scipy.stats.ttest_ind_from_stats`) of the measured runs against the paper's n, mean "
        f"and std; correction: {corr}; α = {res.alpha:g}. 'consistent' = adjusted p > α, i.e. no evidence "
        "of a difference (not proof of equality). Epochs: the paper's convergence epochs "
        "(Tables 6–8) beside the measured `epochs_run`.*"
    )


def paper_table(res, rows):
    out = []
    for r in rows:
        if r["consistent"] is None:
            verdict = "– (not testable)"
        elif r["consistent"]:
            verdict = "consistent"
        else:
            verdict = f"differs ({'higher' if r['diff'] > 0 else 'lower'})"
        paper_ep = fmt_ms(r["paper_epochs_mean"], r["paper_epochs_std"], 1)
        out.append({
            "Task": task_header(res, r["task"]), "Initialization": r["weights"],
            "Paper (n)": f"{fmt_ms(r['paper_mean'], r['paper_std'])} ({r['paper_n']})",
            "Source": r["source"] or "–",
            "Measured (n)": f"{fmt_ms(r['mean'], r['std'])} ({r['n']})",
            "Δ (pp)": fmt_num(r["diff"]), "t": fmt_num(r["t"], ".2f"),
            f"p ({_test_short(res)})": fmt_p(r["p"]),
            "p adj.": fmt_p(r["p_adj"]), "Verdict": verdict,
            "Paper epochs": paper_ep,
            "Measured epochs": fmt_ms(r["epochs_mean"], r["epochs_std"], 1),
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- per-run CIs
def ci_caption(rows):
    levels = sorted({r["level"] for r in rows if r.get("level")})
    boots = sorted({r["n_boot"] for r in rows if r.get("n_boot")})
    level = "/".join(f"{100 * v:g}%" for v in levels) or "95%"
    return (f"*{Q_BOOT} Each run: its test score (percent) and the {level} percentile bootstrap "
            f"interval over its test images ({'/'.join(map(str, boots)) or '?'} resamples; "
            "'used' = resamples in which the score was defined), read from the run's "
            "`metrics.json` (\"ci\").*")  # fmt: skip


def ci_table(res, rows):
    return [{
        "Task": task_header(res, r["task"]), "Initialization": label(res, r["weights"]),
        "Seed": r["seed"], "Score": f"{SCALE * r['estimate']:.2f}",
        "95% CI": f"[{SCALE * r['low']:.2f}, {SCALE * r['high']:.2f}]",
        "Width (pp)": f"{SCALE * (r['high'] - r['low']):.2f}",
        "Used": r["n_used"] if r.get("n_used") is not None else "–",
    } for r in rows]  # fmt: skip


# --------------------------------------------------------------------------- paired tests
def paired_caption(res):
    corr = stats.CORRECTION_NAMES[res.correction].replace(" in the table", "")
    return (
        f"*{Q_PAIRED} Images are paired by `image_id`. Classification: DeLong's test for "
        "correlated AUCs (Sun & Xu's fast algorithm) on the mean AUC over the scored classes, "
        "its variance from the joint DeLong covariance of the classes (per-class tests in "
        "`paired_tests.csv`). Segmentation: Wilcoxon signed-rank test on per-image Dice (paired "
        "t-test in the CSV); for a task scored by global Dice, a paired bootstrap of the "
        "global-Dice difference (2000 joint resamples of the images). Per seed: run r of each "
        "initialization vs run r of the baseline (same seed). Pooled: the difference averaged "
        "over the seed pairs, tested on the seed-averaged per-image terms; it asks whether, averaged over these trained models, "
        f"the two initializations differ on these images. Correction: {corr} (over the pooled "
        f"tests); α = {res.alpha:g}. Δ = initialization − baseline (percentage points).*"
    )


def paired_table(res, rows):
    out = []
    for r in rows:
        primary = r["primary"]
        per = [runs_mod.diff_of(primary, s) * SCALE for s in r["per_seed"]]
        per_p = [runs_mod.p_of(primary, s) for s in r["per_seed"]]
        n_sig = sum(1 for p in per_p if math.isfinite(p) and p <= res.alpha)
        pooled = runs_mod.diff_of(primary, r["pooled"])
        out.append({
            "Task": task_header(res, r["task"]), "Initialization": r["weights"],
            "Test": runs_mod.PRIMARY_NAMES[primary], "Seed pairs": len(r["seeds"]),
            "Δ per seed (pp)": f"{min(per):+.2f} … {max(per):+.2f}" if per else "–",
            "Seeds with p ≤ α (unadj.)": f"{n_sig}/{len(per)}",
            "Pooled Δ (pp)": fmt_num(pooled * SCALE), "Pooled p": fmt_p(r["p"]),
            "p adj.": fmt_p(r["p_adj"]),
            "Sig.": (BETTER if pooled > 0 else WORSE) if r["significant"] else "",
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- label efficiency
def efficiency_caption(study, entry):
    subsets = ", ".join(sorted(entry["subsets"])) or "not recorded"
    return (
        f"*Score (percent) vs fraction of the training labels; mean [95% CI over seeds, Student t "
        f"with n − 1 df] (n runs). label_subset: {subsets} (fixed = one training subset per "
        "fraction shared by every seed and initialization; per-run = a new random subset for "
        "each run). n_train in the column header: training images used (mean over runs).*"
    )


def efficiency_table(entry):
    out = []
    for w in entry["weights"]:
        row = {"Initialization": w}
        for f in entry["fractions"]:
            n_train = entry["n_train"].get(f)
            head = fraction_text(f) + (
                f" (n_train {n_train:,.0f})" if n_train and math.isfinite(n_train) else ""
            )
            s = entry["cells"].get((w, f))
            if s is None or s["n"] == 0:
                row[head] = "–"
            elif s["n"] == 1:
                row[head] = f"{s['mean']:.2f} (1)"
            else:
                row[head] = f"{s['mean']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}] ({s['n']})"
        out.append(row)
    return out


def efficiency_data(study):
    """{(task, protocol): entry} for every task/protocol with >= 2 label fractions."""
    out = {}
    f = study.frame
    for (task, protocol), sel in f.groupby(["task", "protocol"], sort=False):
        fractions = sorted(sel.label_fraction.unique())
        if len(fractions) < 2:
            continue
        weights = [w for w in study.weights if (sel.weights == w).any()]
        cells = {
            (w, fr): stats.summarize(sel[(sel.weights == w) & (sel.label_fraction == fr)].score * SCALE)
            for w in weights for fr in fractions
        }  # fmt: skip
        n_train = {fr: sel[sel.label_fraction == fr].n_train.mean() for fr in fractions}
        subsets = {str(s) for s in sel.label_subset.dropna().unique()}
        out[(task, protocol)] = dict(task=task, protocol=protocol, fractions=fractions,
                                     weights=weights, cells=cells, n_train=n_train,
                                     subsets=subsets, metric=sel.metric.dropna().iloc[0]
                                     if sel.metric.notna().any() else None)  # fmt: skip
    return out


# --------------------------------------------------------------------------- header / footer
def metric_lines(tasks, metrics, dice_scores=None):
    parts = []
    for task in tasks:
        metric = metrics.get(task)
        if metric == "dice":
            from tfmedbench.metrics import DICE_THRESHOLD, EMPTY_MASK_RULE

            which = (dice_scores or {}).get(task, "per_image")
            what = ("global Dice over all test pixels" if which == "global"
                    else "Dice, mean over test images")  # fmt: skip
            parts.append(f"{task}: {what} at threshold {DICE_THRESHOLD} "
                         f"(empty-mask rule: {EMPTY_MASK_RULE})")  # fmt: skip
        elif metric == "auc":
            parts.append(f"{task}: AUC (ROC), mean over the scored classes; a class with one label "
                         "value in the test split has no AUC and is left out")  # fmt: skip
        else:
            parts.append(f"{task}: {metric}")
    return "- Metrics: " + "; ".join(parts) + "."


def header_lines(study, reference=None):
    res = study.main
    lo, hi = res.n_range()
    n_text = f"n = {hi} runs per cell" if lo == hi else f"n = {lo}–{hi} runs per cell"
    style = {"paper": "the paper's protocol", "tfmedbench": "tfmedbench's stricter defaults"}
    metrics, dice_scores = {}, {}
    for s in study.slices:
        metrics.update({t: m for t, m in s.metrics.items() if m})
        dice_scores.update({t: s.dice_score(t) for t in s.tasks})
    lines = [
        f"- Statistics style **{study.style}** ({style.get(study.style, study.style)}): ± = "
        f"{stats.STD_NAMES[study.ddof]}; test: {stats.TEST_NAMES[study.test]}; correction: "
        f"{stats.CORRECTION_NAMES[study.correction]} (`--style`, `--test`, `--correction`).",
        f"- {n_text} (default slice); cells are the test score × {SCALE:g} (percent). Seeds: run r "
        "uses seed base_seed + r for every cell.",
        f"- Marks: {BETTER} significantly better, {WORSE} significantly worse than the baseline "
        f"**{study.baseline}** (adjusted p ≤ α); **bold**: best mean in the column; (n=k): a cell "
        "with fewer runs.",
        metric_lines(study.tasks, metrics, dice_scores),
    ]
    if reference is not None:
        lines.append(f"- Paper reference: {reference.get('citation') or reference['label']}.")
    if len(study.slices) > 1:
        lines.append("- Slices (protocol, label fraction), each with its own tables and tests: "
                     + "; ".join(s.title for s in study.slices) + ".")  # fmt: skip
    partial = study.frame[study.frame.label_fraction < 1]
    if len(partial):
        subsets = sorted({str(s) for s in partial.label_subset.dropna().unique()}) or [
            "not recorded"
        ]
        lines.append(f"- Label subsets of the runs with a fraction of the labels: {', '.join(subsets)} "
                     "(fixed: one subset per fraction, the same for every seed and initialization; "
                     "per-run: drawn anew for each run).")  # fmt: skip
    return lines


def footer_lines(study):
    versions = study.versions()
    vtext = ", ".join(f"{k} {'/'.join(v)}" for k, v in versions.items()) or "not recorded"
    import tfmedbench

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Versions of the runs: {vtext}.",
        f"Generated {now} by tfmedbench {tfmedbench.__version__} (`tfmedbench report`) from "
        f"`results.jsonl` ({len(study.all_records)} records, {len(study.ok)} successful and "
        f"{len(study.failed)} failed cells). Generated file: do not edit by hand.",
    ]


# --------------------------------------------------------------------------- CSV
def _summary_rows(res, paper_rows):
    by_paper = {(r["task"], r["weights"]): r for r in paper_rows}
    out = []
    for (task, w), r in res.rows.items():
        ep = stats.summarize(res.scores(task, w, "epochs_run"))
        be = stats.summarize(res.scores(task, w, "best_epoch"))
        row = dict(
            protocol=res.protocol, label_fraction=res.fraction, task=task, weights=w,
            metric=res.metrics.get(task), baseline=res.baseline, is_baseline=r["is_baseline"],
            n=r["n"], mean=r["mean"], std=r["std"], std_ddof0=r["std_ddof0"],
            ci95_low=r["ci_low"], ci95_high=r["ci_high"], diff_to_baseline=r["diff"], t=r["t"],
            df=r["df"], p=r["p"], p_adjusted=r["p_adj"], significant=r["significant"],
            direction=r["direction"], style=res.style, test=res.test, correction=res.correction,
            alpha=res.alpha, epochs_run_mean=ep["mean"], epochs_run_std=ep["std"],
            best_epoch_mean=be["mean"], best_epoch_std=be["std"],
        )  # fmt: skip
        ref = by_paper.get((task, w), {})
        row.update(paper_mean=ref.get("paper_mean"), paper_std=ref.get("paper_std"),
                   paper_n=ref.get("paper_n"), paper_source=ref.get("source"),
                   paper_p=ref.get("p"), paper_p_adjusted=ref.get("p_adj"),
                   paper_consistent=ref.get("consistent"))  # fmt: skip
        out.append(row)
    return out


def _paired_csv_rows(res, rows):
    out = []
    for r in rows:
        for seed, result in [(s["seed"], s) for s in r["per_seed"]] + [("pooled", r["pooled"])]:
            base = dict(protocol=res.protocol, label_fraction=res.fraction, task=r["task"],
                        weights=r["weights"], baseline=res.baseline, seed=seed,
                        seed_pairs=len(r["seeds"]) if seed == "pooled" else 1)  # fmt: skip
            if r["kind"] == "classification":
                items = [("mean", result.get("mean"))] + list(result["per_class"].items())
                for name, t in items:
                    if t is None:
                        continue
                    out.append(dict(base, test="DeLong", quantity=name, diff=t["diff"], se=t["se"],
                                    z=t["z"], p=t["p"], ci_low=t["ci_low"], ci_high=t["ci_high"],
                                    auc_a=t["auc_a"], auc_b=t["auc_b"]))  # fmt: skip
            else:
                out.append(dict(base, test="Wilcoxon signed-rank", quantity="per-image Dice",
                                diff=result["diff"], z=math.nan, p=result["wilcoxon_p"],
                                statistic=result["wilcoxon_stat"], n_images=result["n_images"]))  # fmt: skip
                out.append(dict(base, test="paired t", quantity="per-image Dice",
                                diff=result["diff"], statistic=result["t"], df=result["df"],
                                p=result["t_p"], n_images=result["n_images"]))  # fmt: skip
                if result.get("global"):
                    g = result["global"]
                    out.append(dict(base, test="paired bootstrap", quantity="global Dice",
                                    diff=g["diff"], se=g["se"], p=g["p"],
                                    n_images=result["n_images"]))  # fmt: skip
    return out


def _efficiency_rows(entries):
    out = []
    for entry in entries.values():
        for (w, f), s in entry["cells"].items():
            out.append(dict(task=entry["task"], protocol=entry["protocol"], weights=w,
                            label_fraction=f, n=s["n"], mean=s["mean"], ci95_low=s["ci_low"],
                            ci95_high=s["ci_high"], n_train=entry["n_train"].get(f),
                            label_subset="/".join(sorted(entry["subsets"]))))  # fmt: skip
    return out


def write_csvs(study, out_dir, extras, efficiency):
    """Tidy statistics, wide tables, per-run CIs, paired tests, label efficiency as CSV."""
    summary, wide, conv, paper_rows, ci_rows, paired = [], [], [], [], [], []
    for res in study.slices:
        extra = extras[res.key]
        keys = dict(protocol=res.protocol, label_fraction=res.fraction)
        summary += _summary_rows(res, extra["paper"])
        wide += [dict(keys, **{k: v.replace("**", "") for k, v in row.items()})
                 for row in score_cells(res).values()]  # fmt: skip
        conv += [dict(keys, **row) for row in convergence_cells(res)]
        paper_rows += extra["paper"]
        ci_rows += [dict(keys, **r) for r in extra["ci"]]
        paired += _paired_csv_rows(res, extra["paired"])
    files = {
        "summary.csv": summary, "table_scores.csv": wide, "table_convergence.csv": conv,
        "paper_comparison.csv": paper_rows, "run_ci.csv": ci_rows, "paired_tests.csv": paired,
        "label_efficiency.csv": _efficiency_rows(efficiency),
    }  # fmt: skip
    written = []
    for name, rows in files.items():
        path = os.path.join(out_dir, name)
        if rows:
            pd.DataFrame(rows).to_csv(path, index=False)
            written.append(path)
        elif os.path.exists(path):
            os.remove(path)  # stale from an earlier report of this sweep
    runs = study.frame.sort_values(["protocol", "label_fraction", "task", "weights", "seed"])
    runs.to_csv(os.path.join(out_dir, "runs.csv"), index=False)
    return written
