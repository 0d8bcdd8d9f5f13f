import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfmedbench import metrics


def test_auc_hand_computed():
    # Positives score 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1)
    # -> 3 of 4 correctly ordered.
    out = metrics.per_class_auc([[1], [1], [0], [0]], [[0.8], [0.4], [0.5], [0.1]], ["a"])
    assert out == {"a": 0.75}


def test_auc_ties_count_half():
    out = metrics.per_class_auc([1, 0], [0.5, 0.5], ["a"])
    assert out["a"] == 0.5


def test_per_class_auc_matches_sklearn_and_flags_undefined():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (200, 3)).astype(float)
    y[:, 2] = 0  # a class with no positive in the test set
    s = rng.random((200, 3)) + 0.3 * y
    out = metrics.per_class_auc(y, s, ["a", "b", "c"])
    for k, name in enumerate("ab"):
        assert out[name] == pytest.approx(roc_auc_score(y[:, k], s[:, k]), abs=1e-12)
    assert out["c"] is None
    assert metrics.mean_defined(out) == pytest.approx((out["a"] + out["b"]) / 2)
    assert metrics.mean_defined(out, ["a"]) == out["a"]
    assert math.isnan(metrics.mean_defined({"c": None}))


def test_auc_shape_mismatch_fails():
    with pytest.raises(ValueError, match="shape mismatch"):
        metrics.per_class_auc(np.zeros((4, 2)), np.zeros((4, 3)), ["a", "b"])


def test_dice_hand_computed():
    target = np.zeros((2, 4, 4))
    target[0, :2, :2] = 1  # 4 pixels
    pred = np.zeros((2, 4, 4))
    pred[0, :2, :1] = 0.9  # 2 pixels, both inside -> 2*2/(2+4) = 2/3
    pred[0, 3, 3] = 0.6  # +1 false positive -> 2*2/(3+4) = 4/7
    # image 1: empty vs empty -> 1.0
    per_image, global_dice = metrics.dice(pred, target)
    assert per_image == pytest.approx((4 / 7 + 1.0) / 2)
    assert global_dice == pytest.approx(4 / 7)


def test_dice_threshold_is_strictly_above_half_and_empty_rules():
    target = np.ones((1, 2, 2))
    assert metrics.dice(np.full((1, 2, 2), 0.5), target) == (0.0, 0.0)
    assert metrics.dice(np.full((1, 2, 2), 0.51), target) == (1.0, 1.0)
    # prediction on an empty target -> 0
    assert metrics.dice(np.ones((1, 2, 2)), np.zeros((1, 2, 2)))[0] == 0.0
    # all empty -> 1 both ways
    assert metrics.dice(np.zeros((3, 2, 2)), np.zeros((3, 2, 2))) == (1.0, 1.0)


def test_dice_from_stats_equals_direct():
    rng = np.random.default_rng(1)
    pred, target = rng.random((5, 8, 8)), rng.random((5, 8, 8)) > 0.7
    stats = metrics.dice_stats(pred, target)
    mean, glob, per_image = metrics.dice_from_stats(stats)
    for i in range(5):
        p, t = pred[i] > 0.5, target[i]
        assert per_image[i] == pytest.approx(2 * (p & t).sum() / (p.sum() + t.sum()))
    assert (mean, glob) == metrics.dice(pred, target)
