"""Bootstrap CIs of tfmedbench.metrics against explicit resampling, sklearn and DeLong."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfmedbench import metrics


def data(n=400, k=3, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < [0.3, 0.1, 0.5][:k]).astype(np.float32)
    s = y * [1.0, 0.6, 0.3][:k] + rng.normal(size=(n, k))
    if ties:
        s[:, 0] = np.round(s[:, 0], 1)
    return y, s.astype(np.float32), [f"c{i}" for i in range(k)]


def test_weighted_aucs_equal_sklearn_on_explicit_resamples():
    y, s, _ = data()
    rng = np.random.default_rng(1)
    counts = metrics.resample_counts(rng, len(y), 5)
    assert counts.shape == (5, len(y)) and (counts.sum(axis=1) == len(y)).all()
    for k in range(3):
        got = metrics.weighted_aucs(y[:, k] > 0.5, s[:, k], counts)
        for b in range(5):
            idx = np.repeat(np.arange(len(y)), counts[b])  # the resample written out
            assert got[b] == pytest.approx(roc_auc_score(y[idx, k], s[idx, k]), abs=1e-12)
    ones = np.ones((1, len(y)), np.int32)
    assert metrics.weighted_aucs(y[:, 0] > 0.5, s[:, 0], ones)[0] == pytest.approx(
        roc_auc_score(y[:, 0], s[:, 0])
    )
    no_pos = np.zeros((1, len(y)), np.int32)
    no_pos[0, np.flatnonzero(y[:, 0] == 0)[:3]] = 1
    assert np.isnan(metrics.weighted_aucs(y[:, 0] > 0.5, s[:, 0], no_pos)[0])


def test_bootstrap_auc_reproducible_and_joint():
    y, s, names = data()
    a = metrics.bootstrap_auc(y, s, names, scored=["c0", "c2"], n_boot=300, seed=4)
    b = metrics.bootstrap_auc(y, s, names, scored=["c0", "c2"], n_boot=300, seed=4)
    c = metrics.bootstrap_auc(y, s, names, scored=["c0", "c2"], n_boot=300, seed=5)
    assert a == b and a["score"] != c["score"]
    point = metrics.per_class_auc(y, s, names)
    assert a["score"]["estimate"] == pytest.approx((point["c0"] + point["c2"]) / 2)
    assert a["scored"] == ["c0", "c2"] and a["n_boot"] == 300 and a["n_images"] == 400
    for name in names:
        ci = a["per_class"][name]
        assert ci["low"] < ci["estimate"] < ci["high"] and ci["n_used"] == 300
    # the mean's interval is that of the mean over the SAME resamples (joint resampling):
    # narrower than the average of the class intervals when classes are independent
    width = a["score"]["high"] - a["score"]["low"]
    assert width < np.mean(
        [a["per_class"][n]["high"] - a["per_class"][n]["low"] for n in ("c0", "c2")]
    )


def test_bootstrap_auc_matches_an_explicit_loop():
    y, s, names = data(n=150, seed=3)
    n_boot = 40  # one block: the counts are the first draws of default_rng(seed)
    out = metrics.bootstrap_auc(y, s, names, n_boot=n_boot, seed=9, level=0.9)
    counts = metrics.resample_counts(np.random.default_rng(9), len(y), n_boot)
    means = []
    for b in range(n_boot):
        idx = np.repeat(np.arange(len(y)), counts[b])
        means.append(np.mean([roc_auc_score(y[idx, k], s[idx, k]) for k in range(3)]))
    lo, hi = np.quantile(means, [0.05, 0.95])
    assert (out["score"]["low"], out["score"]["high"]) == (
        pytest.approx(lo, abs=1e-12),
        pytest.approx(hi, abs=1e-12),
    )


def test_ci_width_agrees_with_delong_normal_interval():
    from tfmedbench.study import paired

    rng = np.random.default_rng(2)
    n = 800
    y = rng.random(n) < 0.3
    s = y + rng.normal(size=n)
    ci = metrics.bootstrap_auc(y[:, None], s[:, None], ["x"], n_boot=2000, seed=0)["score"]
    _, cov = paired.delong_cov(y, s[None])
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.959964 * np.sqrt(cov[0, 0]), rel=0.1)


def test_undefined_classes_and_resamples_are_counted():
    rng = np.random.default_rng(0)
    n = 60
    y = np.zeros((n, 3))
    y[:, 0] = rng.random(n) < 0.5
    y[:2, 1] = 1  # two positives: some resamples have none
    s = rng.normal(size=(n, 3))
    out = metrics.bootstrap_auc(y, s, ["a", "rare", "never"], n_boot=500, seed=1)
    assert out["per_class"]["never"] is None  # one label value in the whole test set
    rare = out["per_class"]["rare"]["n_used"]
    assert 0 < rare < 500  # P(no positive drawn) = (58/60)^60 ~ 13%
    assert out["per_class"]["a"]["n_used"] == 500
    assert out["score"]["n_used"] == rare  # the mean needs every scored class defined
    assert out["scored"] == ["a", "rare"]


def test_bootstrap_dice_explicit_and_reproducible():
    rng = np.random.default_rng(0)
    n = 90
    tgt = rng.integers(0, 50, n).astype(float)
    tgt[:10] = 0
    pred = np.maximum(tgt + rng.integers(-10, 10, n), 0)
    pred[:5] = 0  # empty vs empty: Dice 1
    stats = np.stack([np.minimum(pred, tgt), pred, tgt], 1)
    out = metrics.bootstrap_dice(stats, n_boot=50, seed=3)
    assert out == metrics.bootstrap_dice(stats, n_boot=50, seed=3)
    mean, glob, per_image = metrics.dice_from_stats(stats)
    assert out["score"]["estimate"] == mean and out["dice_global"]["estimate"] == glob
    counts = metrics.resample_counts(np.random.default_rng(3), n, 50)
    means = [np.mean(np.repeat(per_image, counts[b])) for b in range(50)]
    globs = []
    for b in range(50):
        st = np.repeat(stats, counts[b], axis=0)
        globs.append(2 * st[:, 0].sum() / (st[:, 1] + st[:, 2]).sum())
    assert out["score"]["low"] == pytest.approx(np.quantile(means, 0.025), abs=1e-12)
    assert out["dice_global"]["high"] == pytest.approx(np.quantile(globs, 0.975), abs=1e-12)
    assert (
        metrics.bootstrap_dice(stats, n_boot=50, seed=3, score="global")["score"]
        == out["dice_global"]
    )
    with pytest.raises(ValueError):
        metrics.bootstrap_dice(-stats)
    with pytest.raises(ValueError):
        metrics.bootstrap_dice(stats, score="median")
