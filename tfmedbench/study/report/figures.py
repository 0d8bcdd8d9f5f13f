"""Figures of a benchmark (PNG and SVG): score box plots per task, a difference heat map, and
label-efficiency curves (score vs fraction of the training labels)."""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from tfmedbench.study.report.data import METRIC_NAMES, SCALE  # noqa: E402
from tfmedbench.study.report.tables import BETTER, WORSE  # noqa: E402

COLORS = {
    "baseline": "#4C72B0",  # blue
    "better": "#1B9E77",  # green
    "worse": "#D95F02",  # orange (colour-blind safe against green)
    "ns": "#9E9E9E",  # grey
}
FORMATS = ("png", "svg")

plt.rcParams.update(
    {
        "svg.hashsalt": "tfmedbench",  # reproducible SVG ids
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
    }
)


def _save(fig, out_dir, stem, formats=FORMATS):
    paths = []
    for fmt in formats:
        path = os.path.join(out_dir, f"{stem}.{fmt}")
        meta = {"Date": None} if fmt == "svg" else {}
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


def _category(res, task, w):
    if w == res.baseline:
        return "baseline"
    r = res.row(task, w)
    if r is None or not r["significant"]:
        return "ns"
    return "better" if r["direction"] > 0 else "worse"


def draw_task(ax, res, task, show_ylabels=True):
    """Horizontal box plots (one per initialization), every run a point, baseline mean line."""
    weights = [w for w in res.weights if res.scores(task, w)]
    data = [[s * SCALE for s in res.scores(task, w)] for w in weights]
    positions = np.arange(len(weights))[::-1]  # first initialization on top
    box = ax.boxplot(
        data,
        positions=positions,
        orientation="horizontal",
        widths=0.55,
        patch_artist=True,
        showfliers=False,  # every run is drawn as a point below
        medianprops={"color": "black", "linewidth": 1.2},
    )
    rng = np.random.default_rng(0)  # deterministic jitter
    for pos, w, values, patch in zip(positions, weights, data, box["boxes"]):
        color = COLORS[_category(res, task, w)]
        patch.set_facecolor(color)
        patch.set_alpha(0.35)
        patch.set_edgecolor(color)
        jitter = rng.uniform(-0.15, 0.15, size=len(values))
        ax.scatter(values, pos + jitter, s=16, color=color, edgecolor="black", linewidth=0.4,
                   zorder=3)  # fmt: skip
    base = res.row(task, res.baseline)
    if base is not None and not math.isnan(base["mean"]):
        ax.axvline(base["mean"], color=COLORS["baseline"], linestyle="--", linewidth=1.2,
                   zorder=1)  # fmt: skip
    labels = []
    for w in weights:
        m = {"better": f" {BETTER}", "worse": f" {WORSE}"}.get(_category(res, task, w), "")
        labels.append(f"{w}{m}")
    ax.set_yticks(positions)
    ax.set_yticklabels(labels if show_ylabels else [""] * len(labels))
    metric = METRIC_NAMES.get(res.metrics.get(task), "score")
    ax.set_xlabel(f"{metric} (%)")
    ax.set_title(task)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_ylim(-0.6, len(weights) - 0.4)


def _legend_handles(res):
    return [
        Patch(facecolor=COLORS["baseline"], alpha=0.5, label=f"baseline ({res.baseline}); dashed: its mean"),
        Patch(facecolor=COLORS["better"], alpha=0.5, label=f"{BETTER} significantly better"),
        Patch(facecolor=COLORS["worse"], alpha=0.5, label=f"{WORSE} significantly worse"),
        Patch(facecolor=COLORS["ns"], alpha=0.5, label="not significant"),
    ]


def _caption(res):
    lo, hi = res.n_range()
    n = f"n={hi}" if lo == hi else f"n={lo}-{hi}"
    corr = "Holm-adjusted" if res.correction == "holm" else "unadjusted"
    test = "Welch" if res.test == "welch" else "Student"
    return f"{n} runs per box (points); {test} t-test vs {res.baseline}, {corr} p ≤ {res.alpha:g}"


def _where(res):
    """' (fine-tuning, 10% of the training labels)' for a slice other than the default."""
    return f" ({res.title})" if res.suffix else ""


def task_figure(res, task, out_dir, formats=FORMATS):
    n = len([w for w in res.weights if res.scores(task, w)])
    height = 1.9 + 0.42 * n
    fig, ax = plt.subplots(figsize=(6.4, height))
    draw_task(ax, res, task)
    ax.set_title(f"{task}{_where(res)}\n{_caption(res)}", fontsize=9)
    fig.legend(handles=_legend_handles(res), loc="lower center", ncol=2, fontsize=8,
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0.55 / height + 0.02, 1, 1))
    return _save(fig, out_dir, f"scores_{task}{res.suffix}", formats)


def overview_figure(res, out_dir, formats=FORMATS):
    """All tasks side by side (the paper's Fig. 1/2 shape)."""
    tasks = res.tasks
    n = len(res.weights)
    fig, axes = plt.subplots(1, len(tasks), figsize=(1.2 + 3.3 * len(tasks), 1.8 + 0.42 * n),
                             squeeze=False)  # fmt: skip
    for i, (ax, task) in enumerate(zip(axes[0], tasks)):
        draw_task(ax, res, task, show_ylabels=(i == 0))
        if i and [w for w in res.weights if res.scores(task, w)] != [
            w for w in res.weights if res.scores(tasks[0], w)
        ]:
            draw_task(ax, res, task, show_ylabels=True)  # different rows: label them
    fig.legend(handles=_legend_handles(res), loc="lower center", ncol=4, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.02))  # fmt: skip
    fig.suptitle(_caption(res) + _where(res), fontsize=9, color="#444444")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return _save(fig, out_dir, f"scores_all{res.suffix}", formats)


def heatmap_figure(res, out_dir, formats=FORMATS):
    """Mean difference to the baseline (percentage points); only significant cells coloured."""
    rows = [w for w in res.weights if w != res.baseline]
    if not rows:
        return []
    tasks = res.tasks
    diff = np.full((len(rows), len(tasks)), np.nan)
    sig = np.zeros_like(diff, dtype=bool)
    padj = np.full_like(diff, np.nan)
    for i, w in enumerate(rows):
        for j, t in enumerate(tasks):
            r = res.row(t, w)
            if r is not None:
                diff[i, j], sig[i, j], padj[i, j] = r["diff"], r["significant"], r["p_adj"]
    sig_abs = np.abs(diff[sig & np.isfinite(diff)])
    # Colour scale: the 90th percentile of the significant differences, so one huge difference
    # (e.g. random init) does not wash out the others; larger ones saturate (colourbar arrows).
    vmax = float(np.quantile(sig_abs, 0.9)) if sig_abs.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * len(tasks), 1.5 + 0.55 * len(rows)))
    # brown = worse, green = better (as in the box plots); grey = not significant / no data
    cmap = plt.get_cmap("BrBG").with_extremes(bad="#d9d9d9")
    shown = np.ma.masked_invalid(np.where(sig, diff, np.nan))
    im = ax.imshow(shown, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(tasks)):
            if not np.isfinite(diff[i, j]):
                ax.text(j, i, "no runs", ha="center", va="center", fontsize=8, color="#555555")
                continue
            m = (BETTER if diff[i, j] > 0 else WORSE) if sig[i, j] else " n.s."
            strong = sig[i, j] and abs(diff[i, j]) > 0.65 * vmax
            p_txt = "p=–" if not np.isfinite(padj[i, j]) else f"p={padj[i, j]:.2g}"
            ax.text(j, i, f"{diff[i, j]:+.2f}{m}\n{p_txt}", ha="center", va="center",
                    fontsize=8, color="white" if strong else "black")  # fmt: skip
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(
        [f"{t}\n({METRIC_NAMES.get(res.metrics.get(t), '?')})" for t in tasks]
    )
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.set_xticks(np.arange(-0.5, len(tasks)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03, extend="both")
    cbar.set_label("mean − baseline mean (pp)\nsignificant cells only", fontsize=8)
    adj = "Holm-adjusted p" if res.correction == "holm" else "p (unadjusted)"
    ax.set_title(
        f"Difference to {res.baseline}{_where(res)}\n(grey: not significant; {adj})", fontsize=10
    )
    return _save(fig, out_dir, f"heatmap_diff{res.suffix}", formats)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def efficiency_figure(entry, baseline, out_dir, formats=FORMATS):
    """Score vs label fraction (log x) for one task and protocol: one line per initialization,
    its mean over seeds with a 95% CI band (Student t over seeds; no band with one run)."""
    from tfmedbench.study.report.data import PROTOCOL_NAMES, fraction_text

    task, protocol, fractions = entry["task"], entry["protocol"], entry["fractions"]
    weights = entry["weights"]
    cmap = plt.get_cmap("tab10" if len(weights) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    for i, w in enumerate(weights):
        pts = [(100 * f, entry["cells"][(w, f)]) for f in fractions if entry["cells"][(w, f)]["n"]]
        if not pts:
            continue
        xs = np.array([x for x, _ in pts])
        mean = np.array([s["mean"] for _, s in pts])
        # AUC and Dice live in [0, 100] %: a t interval over 2-3 seeds can reach past that
        # (t = 12.7 for n = 2); the band is drawn clipped to the metric's range.
        lo = np.clip([s["ci_low"] if s["n"] > 1 else s["mean"] for _, s in pts], 0.0, SCALE)
        hi = np.clip([s["ci_high"] if s["n"] > 1 else s["mean"] for _, s in pts], 0.0, SCALE)
        color = cmap(i % cmap.N)
        is_base = w == baseline
        ax.plot(xs, mean, marker=MARKERS[i % len(MARKERS)], color=color, markersize=5,
                linewidth=2.4 if is_base else 1.5, label=f"{w} (baseline)" if is_base else w,
                zorder=3 if is_base else 2)  # fmt: skip
        ax.fill_between(xs, lo, hi, color=color, alpha=0.16, linewidth=0)
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions])
    n_train = [entry["n_train"].get(f) for f in fractions]
    ax.set_xticklabels([fraction_text(f) + (f"\n{n:,.0f} img" if n and np.isfinite(n) else "")
                        for f, n in zip(fractions, n_train)])  # fmt: skip
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlim(100 * fractions[0] / 1.3, 100 * fractions[-1] * 1.3)
    ax.set_xlabel("training labels used (fraction of the training split; log scale)")
    ax.set_ylabel(f"{METRIC_NAMES.get(entry['metric'], 'score')} (%)")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, SCALE + 1.0))
    subsets = "/".join(sorted(entry["subsets"])) or "not recorded"
    ax.set_title(f"{task}: label efficiency, {PROTOCOL_NAMES.get(protocol, protocol)}\n"
                 f"mean over seeds, band = 95% CI (clipped to 0-100); label_subset: {subsets}",
                 fontsize=10)  # fmt: skip
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, f"label_efficiency_{task}_{protocol}", formats)
