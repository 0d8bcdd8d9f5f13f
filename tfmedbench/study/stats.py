"""Statistics of a benchmark: per-cell summaries and tests against a baseline initialization.

Per (task, weights): n, mean, std with ddof=1 (the sample standard deviation, what a reviewer
expects) and ddof=0 (what the original code printed via `np.std`), and a 95% confidence interval
of the mean from Student's t distribution.

Per comparison with the baseline: the difference of means (other - baseline), an independent
two-sample t-test, two-sided, Welch's (unequal variances, the default) or Student's (pooled
variance, `test="student"`; the paper says "independent two-sample t-test" without saying which),
and Holm's step-down correction across the comparisons of one table (one family), so that the
family-wise error rate stays at alpha.

Report styles (`STYLES`, `resolve_style`): "paper" (the default) = +- as np.std with ddof = 0,
Student's test, no correction, as the paper did; "tfmedbench" = ddof = 1, Welch, Holm.
`t_test_from_stats` tests measured runs against a published mean +- std (n = 10 in the paper).

Undefined cases are reported, never guessed: a test needs n >= 2 in both groups; when both groups
have zero variance the t statistic is undefined (p = NaN, "not significant") unless the means
differ, in which case scipy's inf/0 result is kept as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

TESTS = ("welch", "student")
CORRECTIONS = ("holm", "none")
TEST_NAMES = {
    "welch": "Welch's two-sided independent two-sample t-test (unequal variances)",
    "student": "Student's two-sided independent two-sample t-test (pooled variance)",
}
CORRECTION_NAMES = {
    "holm": "Holm step-down correction across all comparisons in the table",
    "none": "no multiple-comparison correction",
}
# How results are summarised and tested. "paper" follows the paper's protocol (the project
# default): +- is np.std (ddof = 0, as the original code printed), an independent two-sample
# Student t-test, no multiple-comparison correction. "tfmedbench": sample std (ddof = 1), Welch's
# test (no equal-variance assumption) and Holm's correction across each table.
STYLES = {
    "paper": {"test": "student", "correction": "none", "ddof": 0},
    "tfmedbench": {"test": "welch", "correction": "holm", "ddof": 1},
}
STD_NAMES = {
    0: "np.std (ddof = 0, population formula; what the paper's code printed)",
    1: "sample standard deviation (ddof = 1)",
}


def summarize(values, confidence=0.95):
    """Summary of one cell's scores: dict n, mean, std, std_ddof0, sem, ci_low, ci_high, ...

    NaN scores are dropped (a run without a defined score carries no information about the mean).
    With n == 1 the std, sem and CI are NaN (undefined), with n == 0 everything but n is NaN.
    """
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    nan = math.nan
    out = dict(n=n, mean=nan, std=nan, std_ddof0=nan, sem=nan, ci_low=nan, ci_high=nan,
               median=nan, min=nan, max=nan)  # fmt: skip
    if n == 0:
        return out
    out.update(
        mean=float(x.mean()),
        std_ddof0=float(x.std(ddof=0)),
        median=float(np.median(x)),
        min=float(x.min()),
        max=float(x.max()),
    )
    if n >= 2:
        std = float(x.std(ddof=1))
        sem = std / math.sqrt(n)
        half = float(sps.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem
        out.update(std=std, sem=sem, ci_low=out["mean"] - half, ci_high=out["mean"] + half)
    return out


def t_test(sample, baseline, test="welch"):
    """Independent two-sample t-test of `sample` vs `baseline` (two-sided).

    Returns dict diff (mean(sample) - mean(baseline)), t, df, p, n, n_baseline, test.
    t, df and p are NaN when undefined (a group with < 2 values, or two constant equal groups).
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    a = _finite(sample)
    b = _finite(baseline)
    out = dict(
        diff=float(a.mean() - b.mean()) if a.size and b.size else math.nan,
        t=math.nan,
        df=math.nan,
        p=math.nan,
        n=int(a.size),
        n_baseline=int(b.size),
        test=test,
    )
    if a.size < 2 or b.size < 2:
        return out
    va, vb = a.var(ddof=1), b.var(ddof=1)
    if va == 0 and vb == 0 and a.mean() == b.mean():
        return out  # identical constants: no evidence either way
    res = sps.ttest_ind(a, b, equal_var=(test == "student"))
    if test == "student":
        df = a.size + b.size - 2
    else:
        qa, qb = va / a.size, vb / b.size
        denom = qa**2 / (a.size - 1) + qb**2 / (b.size - 1)
        df = (qa + qb) ** 2 / denom if denom > 0 else math.nan
    out.update(t=float(res.statistic), df=float(df), p=float(res.pvalue))
    return out


def holm(pvalues):
    """Holm-adjusted p-values (same order as given). NaNs stay NaN and do not count in m.

    Step-down: sort the m defined p-values ascending, p_(i) * (m - i + 1), running maximum,
    capped at 1. Rejecting where adjusted p <= alpha is exactly Holm's procedure.
    """
    p = np.asarray(list(pvalues), dtype=np.float64)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(np.isfinite(p))
    m = defined.size
    if m == 0:
        return out
    order = defined[np.argsort(p[defined], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, p[idx] * (m - rank)))
        out[idx] = running
    return out


def compare_to_baseline(
    scores: Mapping,
    baseline,
    test="welch",
    correction="holm",
    alpha=0.05,
):
    """Summaries and baseline comparisons of a whole table.

    Args:
      scores: {(task, weights): [score, ...]}.
      baseline: the weights label every other initialization is compared with, per task.
      test: "welch" | "student".  correction: "holm" | "none" (one family: the whole table).

    Returns a list of row dicts (one per (task, weights), in the order of `scores`) with the
    `summarize` fields plus diff, t, df, p, p_adj, significant (bool), direction (+1 better than
    the baseline, -1 worse, 0 not significant or not compared) and is_baseline. Rows of tasks
    without baseline runs, and the baseline rows themselves, are not compared (p NaN).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    rows = []
    for (task, weights), values in scores.items():
        row = dict(task=task, weights=weights, is_baseline=(weights == baseline))
        row.update(summarize(values))
        row.update(diff=math.nan, t=math.nan, df=math.nan, p=math.nan)
        base = scores.get((task, baseline))
        if not row["is_baseline"] and base is not None:
            res = t_test(values, base, test=test)
            row.update(diff=res["diff"], t=res["t"], df=res["df"], p=res["p"])
        rows.append(row)
    pvals = [r["p"] for r in rows]
    adjusted = holm(pvals) if correction == "holm" else np.asarray(pvals, dtype=np.float64)
    for row, p_adj in zip(rows, adjusted):
        row["p_adj"] = float(p_adj)
        row["significant"] = bool(np.isfinite(p_adj) and p_adj <= alpha)
        row["direction"] = int(np.sign(row["diff"])) if row["significant"] else 0
    return rows


def n_comparisons(rows):
    """How many defined comparisons a `compare_to_baseline` table holds (Holm's m)."""
    return int(sum(1 for r in rows if np.isfinite(r["p"])))


def _finite(values: Iterable | Sequence):
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return x[np.isfinite(x)]


def resolve_style(style="paper", test=None, correction=None):
    """{style, test, correction, ddof} of a report style; `test`/`correction` override it."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {tuple(STYLES)}, got {style!r}")
    out = dict(STYLES[style], style=style)
    if test is not None:
        if test not in TESTS:
            raise ValueError(f"test must be one of {TESTS}, got {test!r}")
        out["test"] = test
    if correction is not None:
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
        out["correction"] = correction
    return out


def t_test_from_stats(values, ref_mean, ref_std, ref_n, test="student", ref_ddof=0):
    """Two-sided t-test of measured `values` against a published mean +- std over ref_n runs.

    scipy.stats.ttest_ind_from_stats wants sample standard deviations (ddof = 1); a published
    std computed with ddof = 0 is converted by sqrt(n / (n - 1)). One measured value can still
    be tested with Student's pooled test (it contributes no variance, only its mean; pooled df =
    ref_n - 1), not with Welch's (its own variance would be needed). Returns dict diff (measured
    - published), t, df, p, n; t/df/p NaN when undefined.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    x = _finite(values)
    out = dict(diff=math.nan, t=math.nan, df=math.nan, p=math.nan, n=int(x.size))
    if x.size == 0 or not (ref_n and ref_n >= 2) or not math.isfinite(ref_std):
        return out
    out["diff"] = float(x.mean() - ref_mean)
    s_ref = ref_std * math.sqrt(ref_n / (ref_n - 1)) if ref_ddof == 0 else ref_std
    if x.size < 2 and test == "welch":
        return out
    s = float(x.std(ddof=1)) if x.size >= 2 else 0.0
    if s == 0 and s_ref == 0:
        return out  # both constant: the t statistic is 0/0 or x/0, report it as undefined
    res = sps.ttest_ind_from_stats(float(x.mean()), s, x.size, ref_mean, s_ref, ref_n,
                                   equal_var=(test == "student"))  # fmt: skip
    if test == "student":
        df = x.size + ref_n - 2
    else:
        qa, qb = s**2 / x.size, s_ref**2 / ref_n
        df = (qa + qb) ** 2 / (qa**2 / (x.size - 1) + qb**2 / (ref_n - 1))
    out.update(t=float(res.statistic), df=float(df), p=float(res.pvalue))
    return out
