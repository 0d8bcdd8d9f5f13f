"""tfmedbench.study.stats against scipy and hand computations on known data."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from tfmedbench.study import stats

A = [0.912, 0.905, 0.921, 0.899, 0.915, 0.910, 0.903, 0.918, 0.908, 0.911]
B = [0.890, 0.902, 0.884, 0.897, 0.893, 0.879, 0.905, 0.888, 0.899, 0.891]
C = [0.95, 0.80, 0.99, 0.70]  # small n, large variance


def test_summary_matches_numpy_and_scipy():
    s = stats.summarize(A)
    x = np.asarray(A)
    assert s["n"] == 10
    assert s["mean"] == pytest.approx(x.mean(), abs=1e-15)
    assert s["std"] == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert s["std_ddof0"] == pytest.approx(x.std(ddof=0), rel=1e-12)
    assert s["std"] > s["std_ddof0"]
    lo, hi = sps.t.interval(0.95, df=9, loc=x.mean(), scale=sps.sem(x))
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))


def test_summary_hand_computed():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5
    assert s["std"] == pytest.approx(math.sqrt(5 / 3))  # sum sq dev 5, ddof 1
    assert s["std_ddof0"] == pytest.approx(math.sqrt(5 / 4))
    half = 3.182446305284263 * math.sqrt(5 / 3) / 2  # t_{0.975, 3}
    assert s["ci_high"] - s["mean"] == pytest.approx(half, rel=1e-9)


def test_summary_small_and_nan():
    one = stats.summarize([0.7])
    assert one["n"] == 1 and one["mean"] == 0.7 and math.isnan(one["std"])
    assert math.isnan(one["ci_low"]) and one["std_ddof0"] == 0.0
    assert stats.summarize([])["n"] == 0
    assert stats.summarize([0.5, float("nan"), None, 0.7])["n"] == 2


@pytest.mark.parametrize("test,equal_var", [("welch", False), ("student", True)])
@pytest.mark.parametrize("a,b", [(A, B), (C, B), (B, A)])
def test_t_test_matches_scipy(test, equal_var, a, b):
    res = stats.t_test(a, b, test=test)
    ref = sps.ttest_ind(a, b, equal_var=equal_var)
    assert res["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert res["df"] == pytest.approx(float(ref.df), rel=1e-10)
    assert res["diff"] == pytest.approx(np.mean(a) - np.mean(b))


def test_welch_hand_computed():
    a, b = np.asarray(C), np.asarray(B)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    p = 2 * sps.t.sf(abs(t), df)
    res = stats.t_test(C, B, "welch")
    assert res["t"] == pytest.approx(t, rel=1e-12)
    assert res["df"] == pytest.approx(df, rel=1e-12)
    assert res["p"] == pytest.approx(p, rel=1e-10)
    # Welch and Student differ here (unequal n and variances): the option matters.
    assert abs(res["p"] - stats.t_test(C, B, "student")["p"]) > 1e-3


def test_t_test_undefined_cases():
    assert math.isnan(stats.t_test([0.9], B)["p"])
    same = stats.t_test([0.5, 0.5, 0.5], [0.5, 0.5])
    assert math.isnan(same["p"]) and same["diff"] == 0.0
    with pytest.raises(ValueError):
        stats.t_test(A, B, test="paired")


def test_holm_known_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone max -> 0.06
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = stats.holm([0.01, float("nan"), 0.02])
    assert math.isnan(out[1])
    assert out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)  # m = 2, not 3


def test_holm_equals_bruteforce_definition():
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 9))
        adj = stats.holm(p)
        order = np.argsort(p)
        m = len(p)
        for alpha in (0.01, 0.05, 0.1):
            # Holm's procedure: reject H_(1..k-1) where k is the first p_(k) > alpha/(m-k+1).
            reject = np.zeros(m, bool)
            for rank, idx in enumerate(order):
                if p[idx] <= alpha / (m - rank):
                    reject[idx] = True
                else:
                    break
            assert np.array_equal(reject, adj <= alpha)


def test_compare_to_baseline_table():
    scores = {
        ("TXC", "imagenet"): B,
        ("TXC", "swav"): A,
        ("TXC", "random"): C,
        ("VFS", "imagenet"): A,
        ("VFS", "swav"): A,  # identical data: p = 1
        ("VFS", "other"): [0.9],  # n = 1: not testable
    }
    rows = stats.compare_to_baseline(scores, "imagenet", test="welch", correction="holm")
    by = {(r["task"], r["weights"]): r for r in rows}
    assert by[("TXC", "imagenet")]["is_baseline"] and math.isnan(by[("TXC", "imagenet")]["p"])
    raw = [
        sps.ttest_ind(A, B, equal_var=False).pvalue,
        sps.ttest_ind(C, B, equal_var=False).pvalue,
        sps.ttest_ind(A, A, equal_var=False).pvalue,
    ]
    adj = stats.holm(raw)
    assert stats.n_comparisons(rows) == 3
    assert by[("TXC", "swav")]["p_adj"] == pytest.approx(adj[0])
    assert by[("TXC", "random")]["p_adj"] == pytest.approx(adj[1])
    assert by[("VFS", "swav")]["p_adj"] == pytest.approx(adj[2])
    assert by[("TXC", "swav")]["significant"] and by[("TXC", "swav")]["direction"] == 1
    assert not by[("VFS", "swav")]["significant"] and by[("VFS", "swav")]["direction"] == 0
    assert math.isnan(by[("VFS", "other")]["p"]) and not by[("VFS", "other")]["significant"]
    # Without correction the raw p-values are used.
    rows_none = stats.compare_to_baseline(scores, "imagenet", correction="none")
    assert {(r["task"], r["weights"]): r["p_adj"] for r in rows_none}[("TXC", "random")] == (
        pytest.approx(raw[1])
    )


def test_worse_direction_is_negative():
    rows = stats.compare_to_baseline({("T", "base"): A, ("T", "bad"): B}, "base")
    bad = [r for r in rows if r["weights"] == "bad"][0]
    assert bad["significant"] and bad["direction"] == -1 and bad["diff"] < 0


def test_styles_and_overrides():
    paper = {"style": "paper", "test": "student", "correction": "none", "ddof": 0}
    ours = {"style": "tfmedbench", "test": "welch", "correction": "holm", "ddof": 1}
    assert stats.resolve_style("paper") == paper and stats.resolve_style("tfmedbench") == ours
    assert stats.resolve_style("paper", test="welch")["test"] == "welch"
    assert stats.resolve_style("tfmedbench", correction="none")["correction"] == "none"
    for bad in ({"style": "nature"}, {"test": "paired"}, {"correction": "bonferroni"}):
        with pytest.raises(ValueError):
            stats.resolve_style(**{"style": "paper", **bad})


@pytest.mark.parametrize("test,equal_var", [("student", True), ("welch", False)])
def test_t_test_from_stats_equals_the_test_on_raw_runs(test, equal_var):
    # The "published" side is B summarised as the paper prints it: mean and np.std (ddof 0).
    ref = np.asarray(B) * 100
    measured = np.asarray(C) * 100
    res = stats.t_test_from_stats(measured, ref.mean(), ref.std(ddof=0), len(ref), test, ref_ddof=0)
    raw = sps.ttest_ind(measured, ref, equal_var=equal_var)
    assert res["t"] == pytest.approx(raw.statistic, rel=1e-10)
    assert res["p"] == pytest.approx(raw.pvalue, rel=1e-10)
    assert res["df"] == pytest.approx(float(raw.df), rel=1e-10)
    assert res["diff"] == pytest.approx(measured.mean() - ref.mean())
    # given as a sample std (ddof 1) it is used as is
    same = stats.t_test_from_stats(measured, ref.mean(), ref.std(ddof=1), len(ref), test, ref_ddof=1)
    assert same["p"] == pytest.approx(res["p"], rel=1e-12)


def test_t_test_from_stats_single_run_and_undefined():
    # one measured run against the paper's n=10: Student's pooled test still works (the run adds
    # its mean, no variance): t = (x - m) / (s * sqrt(1 + 1/10)), df = 9
    s1 = 0.63 * math.sqrt(10 / 9)
    res = stats.t_test_from_stats([96.5], 95.62, 0.63, 10, "student", ref_ddof=0)
    t = (96.5 - 95.62) / (s1 * math.sqrt(1 + 1 / 10))
    assert res["t"] == pytest.approx(t, rel=1e-12) and res["df"] == 9
    assert res["p"] == pytest.approx(2 * sps.t.sf(abs(t), 9), rel=1e-10)
    assert math.isnan(stats.t_test_from_stats([96.5], 95.62, 0.63, 10, "welch")["p"])
    assert math.isnan(stats.t_test_from_stats([100.0, 100.0], 100.0, 0.0, 10)["p"])  # 0/0
    assert math.isnan(stats.t_test_from_stats([], 95.0, 1.0, 10)["diff"])
    assert math.isnan(stats.t_test_from_stats([95.0, 96.0], 95.0, math.nan, 10)["p"])
