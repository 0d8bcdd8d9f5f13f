"""Exact test metrics on gathered predictions: per-class AUC and Dice.

AUCs come from scikit-learn on all predictions (no 200-threshold approximation). A class whose
test labels hold a single value has no AUC: it is reported as None (undefined) and left out of the
mean, never silently scored. Dice is computed at threshold 0.5; empty prediction vs empty target
scores 1.0 (the paper's and the SIIM challenge's rule).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

DICE_THRESHOLD = 0.5
EMPTY_MASK_RULE = "empty prediction vs empty target = 1.0"


def per_class_auc(y_true, y_score, labels):
    """{label: AUC or None}; y_true / y_score are [N, K] (or [N])."""
    y_true = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
    y_score = np.asarray(y_score, np.float64).reshape(len(y_score), -1)
    if y_true.shape != y_score.shape or y_true.shape[1] != len(labels):
        raise ValueError(
            f"shape mismatch: labels {y_true.shape}, scores {y_score.shape}, {len(labels)} names"
        )
    out = {}
    for k, name in enumerate(labels):
        # Soft targets (label smoothing) are never test labels; binarise defensively at 0.5.
        t = (y_true[:, k] >= 0.5).astype(np.int64)
        out[name] = float(roc_auc_score(t, y_score[:, k])) if len(np.unique(t)) == 2 else None
    return out


def mean_defined(scores, names=None):
    """Unweighted mean over the defined (non-None) scores of `names` (default: all)."""
    names = list(scores) if names is None else list(names)
    values = [scores[n] for n in names if scores.get(n) is not None]
    return float(np.mean(values)) if values else math.nan


def dice_stats(pred, target, threshold=DICE_THRESHOLD):
    """Per-image (intersection, predicted positives, target positives) at `threshold`.

    pred, target: [N, ...] arrays. These sums are what the distributed evaluation gathers, so
    both Dice variants below are exact without keeping masks in memory.
    """
    n = len(pred)
    p = (np.asarray(pred).reshape(n, -1) > threshold).astype(np.float64)
    t = (np.asarray(target).reshape(n, -1) > 0.5).astype(np.float64)
    return np.stack([(p * t).sum(1), p.sum(1), t.sum(1)], axis=1)


def dice_from_stats(stats):
    """(mean per-image Dice, global Dice over all pixels) from dice_stats rows [N, 3]."""
    stats = np.asarray(stats, np.float64).reshape(-1, 3)
    inter, psum, tsum = stats[:, 0], stats[:, 1], stats[:, 2]
    denom = psum + tsum
    per_image = np.where(denom > 0, 2 * inter / np.where(denom > 0, denom, 1), 1.0)
    total = denom.sum()
    global_dice = 2 * inter.sum() / total if total > 0 else 1.0
    return float(per_image.mean()), float(global_dice), per_image


def dice(pred, target, threshold=DICE_THRESHOLD):
    """Convenience: (per-image mean Dice, global Dice) of probability maps vs binary targets."""
    mean, glob, _ = dice_from_stats(dice_stats(pred, target, threshold))
    return mean, glob
