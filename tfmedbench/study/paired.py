"""Paired comparison of two initializations on the SAME test images.

The question these tests answer: do these two trained models (or these two sets of trained
models) differ on these test images? The only randomness accounted for is which images the test
set happens to hold; the trained models are fixed. Whether *another training run* would differ
is the across-seed t-test's question (`tfmedbench.study.stats`), and one model's own score
uncertainty is its bootstrap CI (`tfmedbench.metrics.bootstrap_auc` / `bootstrap_dice`).

Classification (AUC):

* Per class: DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more
  correlated ROC curves", computed with the fast algorithm of Sun & Xu (2014, IEEE Signal
  Processing Letters 21(11)): midranks give the structural components V10 (one per positive:
  the fraction of negatives it outranks, ties 1/2) and V01 (one per negative) in O(N log N), and
  var(AUC_A - AUC_B) = (S10_AA + S10_BB - 2 S10_AB) / m + (S01_AA + S01_BB - 2 S01_AB) / n, with
  S10, S01 the sample covariances of the components over the m positives / n negatives.
  z = difference / sd, two-sided normal p-value.
* Mean AUC over the scored classes: DeLong extended to the mean through each image's influence.
  Write image t's centred component for class k as phi_k(t) = (V10_k(t) - AUC_k) / sqrt(m_k
  (m_k - 1)) if t is positive for k, (V01_k(t) - AUC_k) / sqrt(n_k (n_k - 1)) otherwise. For one
  class, sum_t (phi_A(t) - phi_B(t))^2 is exactly DeLong's variance above; for a linear
  combination of classes (and models) the images are the independent units, so var(sum_k w_k
  (AUC_A,k - AUC_B,k)) is estimated by sum_t (sum_k w_k (phi_A,k(t) - phi_B,k(t)))^2, which keeps
  the correlation between classes that share images. Validated against a large paired
  bootstrap in the tests (and, for one class, against DeLong's original O(N^2) formula and pROC).

Segmentation (per-image Dice, the score is its mean): Wilcoxon signed-rank test (the primary
test; per-image Dice is bounded and skewed) and a paired t-test on the per-image differences.

Pairing: per seed, run r of A vs run r of B (same seed, hence the same data order and subset).
Pooled over seeds: the difference averaged over the R seed pairs, D = mean_r (score_A,r -
score_B,r), tested with the same machinery applied to the seed-averaged per-image terms
(classification: psi(t) = mean_r (phi_A,r(t) - phi_B,r(t)); segmentation: the per-image Dice
difference averaged over seeds, then Wilcoxon / paired t). It answers: averaged over these R
trained models of each initialization, do A and B differ on these test images? It does not say
whether new training runs would (that needs the across-seed test).

Predictions files (`predictions.npz` of a run) are untrusted input: members are read through an
allow-list of names, dtypes and shapes, with bounded sizes, before any array is allocated.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from scipy import stats as sps

from tfmedbench.errors import UserError
from tfmedbench.train import predictions as predictions_io
from tfmedbench.train.predictions import MAX_CLASSES

@dataclasses.dataclass
class Predictions:
    path: str
    image_id: np.ndarray  # str [N]
    kind: str  # "classification" | "segmentation"
    scores: np.ndarray | None = None  # float64 [N, K]
    labels: np.ndarray | None = None  # bool [N, K]
    label_names: tuple = ()
    dice: np.ndarray | None = None  # per-image Dice [N]
    dice_stats: np.ndarray | None = None  # (intersection, predicted, target) [N, 3] when stored


def read_predictions(path):
    """A run's predictions.npz as `Predictions` (classification or segmentation); one-line
    UserError naming the file and the problem when it is missing, malformed or lacks image_id."""
    arrays = predictions_io.read_arrays(path)
    try:
        return _build(os.fspath(path), arrays)
    except ValueError as err:
        raise UserError(f"{os.fspath(path)}: not a valid predictions file ({err})") from None


def _build(path, arrays):
    if "image_id" not in arrays:
        raise ValueError(
            "no image_id array; runs written before image ids were saved cannot be paired "
            "(re-run them)"
        )
    ids = np.asarray(arrays["image_id"]).astype(str)
    n = len(ids)
    if len(np.unique(ids)) != n:
        raise ValueError("image_id holds duplicates; images cannot be paired")
    if "scores" in arrays:
        scores = np.asarray(arrays["scores"], np.float64).reshape(n, -1) if n else np.zeros((0, 1))
        if "labels" not in arrays or "label_names" not in arrays:
            raise ValueError("scores without labels/label_names")
        labels = np.asarray(arrays["labels"], np.float64)
        names = tuple(np.asarray(arrays["label_names"]).astype(str).tolist())
        if labels.size != scores.size or scores.shape[1] != len(names) or len(names) > MAX_CLASSES:
            raise ValueError(
                f"scores {scores.shape}, labels {labels.shape}, {len(names)} label_names disagree"
            )
        if not (np.all(np.isfinite(scores)) and np.all(np.isfinite(labels))):
            raise ValueError("scores/labels hold NaN or inf")
        return Predictions(path, ids, "classification", scores=scores,
                           labels=labels.reshape(scores.shape) >= 0.5, label_names=names)  # fmt: skip
    if "dice_stats" in arrays or "dice_per_image" in arrays:
        if "dice_stats" in arrays:
            from tfmedbench.metrics import dice_from_stats

            st = np.asarray(arrays["dice_stats"], np.float64)
            if st.shape != (n, 3) or not np.all(np.isfinite(st)) or np.any(st < 0):
                raise ValueError(
                    f"dice_stats must be finite, non-negative [{n}, 3], got {st.shape}"
                )
            dice = dice_from_stats(st)[2]
        else:
            st, dice = None, np.asarray(arrays["dice_per_image"], np.float64)
        if dice.shape != (n,) or not np.all(np.isfinite(dice)):
            raise ValueError(f"per-image Dice must be finite [{n}]")
        return Predictions(path, ids, "segmentation", dice=dice, dice_stats=st)
    raise ValueError("neither scores/labels nor dice_stats/dice_per_image")


def order_like(ref, other):
    """Indices i such that other.image_id[i] == ref.image_id; refuses different test sets."""
    a, b = ref.image_id, other.image_id
    ia, ib = np.argsort(a, kind="stable"), np.argsort(b, kind="stable")
    if len(a) != len(b) or not np.array_equal(a[ia], b[ib]):
        only_a = len(np.setdiff1d(a, b))
        only_b = len(np.setdiff1d(b, a))
        raise UserError(
            f"{ref.path} and {other.path} were tested on different images ({only_a} only in the "
            f"first, {only_b} only in the second); paired tests need the same test set"
        )
    idx = np.empty(len(a), dtype=np.int64)
    idx[ia] = ib
    return idx


# --------------------------------------------------------------------------- DeLong
def placements(positive, scores):
    """DeLong's structural components by Sun & Xu's midrank algorithm.

    positive: bool [N]; scores: [M, N] (M models on the same images). Returns aucs [M],
    v10 [M, m] (per positive: fraction of negatives below it, ties 1/2) and v01 [M, n] (per
    negative: fraction of positives above it, ties 1/2).
    """
    positive = np.asarray(positive, bool)
    s = np.atleast_2d(np.asarray(scores, np.float64))
    x, y = s[:, positive], s[:, ~positive]
    m, n = x.shape[1], y.shape[1]
    tx = sps.rankdata(x, axis=1)
    ty = sps.rankdata(y, axis=1)
    tz = sps.rankdata(np.concatenate([x, y], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def delong_cov(positive, scores):
    """(aucs [M], covariance [M, M]) of M correlated AUCs on the same images (DeLong 1988)."""
    aucs, v10, v01 = placements(positive, scores)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs >= 2 positives and >= 2 negatives (got {m}, {n})")
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def _z_result(diff, var, level=0.95):
    se = math.sqrt(max(var, 0.0))
    if se == 0:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        z = diff / se
    p = float(2 * sps.norm.sf(abs(z)))
    half = float(sps.norm.ppf(0.5 + level / 2)) * se
    return dict(diff=float(diff), se=se, z=float(z), p=p, ci_low=float(diff - half),
                ci_high=float(diff + half))  # fmt: skip


def delong_test(positive, score_a, score_b, level=0.95):
    """DeLong's two-sided test of AUC_A = AUC_B for two models scored on the same images."""
    aucs, cov = delong_cov(positive, np.stack([score_a, score_b]))
    out = _z_result(aucs[0] - aucs[1], cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], level)
    return dict(out, auc_a=float(aucs[0]), auc_b=float(aucs[1]))


def auc_influence(positive, scores):
    """(auc, phi [N]): each image's centred DeLong component, scaled so that sum(phi**2) is
    DeLong's variance of this AUC (see the module docstring)."""
    positive = np.asarray(positive, bool)
    aucs, v10, v01 = placements(positive, scores)
    m, n = v10.shape[1], v01.shape[1]
    phi = np.empty(len(positive))
    phi[positive] = (v10[0] - aucs[0]) / math.sqrt(m * (m - 1))
    phi[~positive] = (v01[0] - aucs[0]) / math.sqrt(n * (n - 1))
    return float(aucs[0]), phi


def paired_auc(labels, scores_a, scores_b, names, scored=None, level=0.95):
    """Per-class and mean-AUC paired tests of A vs B, averaged over R seed pairs.

    labels: bool [N, K]; scores_a / scores_b: lists of R arrays [N, K] (run r of A is paired with
    run r of B; R = 1 is the per-seed test). Classes with < 2 positives or negatives are None and
    left out of the mean. Returns {"per_class": {name: result | None}, "mean": result | None}.
    """
    y = np.asarray(labels, bool)
    r = len(scores_a)
    if r == 0 or r != len(scores_b):
        raise ValueError("paired_auc needs the same number (>= 1) of runs of A and of B")
    scored = list(names) if scored is None else list(scored)
    per_class, psis, diffs, used = {}, [], [], []
    for k, name in enumerate(names):
        m = int(y[:, k].sum())
        if m < 2 or len(y) - m < 2:
            per_class[name] = None
            continue
        auc_a, auc_b, psi = 0.0, 0.0, np.zeros(len(y))
        for sa, sb in zip(scores_a, scores_b):
            a, phi_a = auc_influence(y[:, k], sa[:, k])
            b, phi_b = auc_influence(y[:, k], sb[:, k])
            auc_a, auc_b, psi = auc_a + a / r, auc_b + b / r, psi + (phi_a - phi_b) / r
        res = _z_result(auc_a - auc_b, float(psi @ psi), level)
        per_class[name] = dict(res, auc_a=auc_a, auc_b=auc_b, n_pos=m, n_neg=len(y) - m)
        if name in scored:
            psis.append(psi)
            diffs.append(auc_a - auc_b)
            used.append(name)
    mean = None
    if used:
        psi = np.mean(psis, axis=0)
        mean = dict(_z_result(float(np.mean(diffs)), float(psi @ psi), level), classes=used,
                    auc_a=float(np.mean([per_class[c]["auc_a"] for c in used])),
                    auc_b=float(np.mean([per_class[c]["auc_b"] for c in used])))  # fmt: skip
    return {"per_class": per_class, "mean": mean, "runs": r}


def paired_bootstrap_mean_auc(labels, scores_a, scores_b, names, scored=None, n_boot=2000, seed=0):
    """Paired bootstrap of the mean-AUC difference (one run each): images resampled jointly for
    both models and all classes. Returns diff, se (SD of the resampled differences), p (two-
    sided, from the resampled differences' sign), n_used. A cross-check of `paired_auc`."""
    from tfmedbench import metrics

    y = np.asarray(labels, bool)
    scored = list(names) if scored is None else list(scored)
    cols = [k for k, n in enumerate(names) if n in scored and 2 <= y[:, k].sum() <= len(y) - 2]
    plans = [(metrics.auc_plan(y[:, k], scores_a[:, k]), metrics.auc_plan(y[:, k], scores_b[:, k]))
             for k in cols]  # fmt: skip
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_boot, 64):
        counts = metrics.resample_counts(rng, len(y), min(64, n_boot - start)).astype(np.float64)
        d = [metrics.weighted_aucs(None, None, counts, pa) - metrics.weighted_aucs(None, None, counts, pb)
             for pa, pb in plans]  # fmt: skip
        diffs.append(np.mean(d, axis=0))
    diffs = np.concatenate(diffs)
    diffs = diffs[np.isfinite(diffs)]
    point = np.mean([_auc1(y[:, k], scores_a[:, k]) - _auc1(y[:, k], scores_b[:, k]) for k in cols])
    return dict(diff=float(point), se=float(diffs.std(ddof=1)), p=_boot_p(diffs),
                n_used=int(diffs.size))  # fmt: skip


def _boot_p(diffs):
    """Two-sided bootstrap p-value of 'difference = 0': twice the smaller tail, each tail
    counted as (1 + k) / (1 + B) so that it is never 0 with a finite number of resamples."""
    if diffs.size == 0:
        return math.nan
    b = diffs.size
    lo, hi = (1 + np.sum(diffs <= 0)) / (1 + b), (1 + np.sum(diffs >= 0)) / (1 + b)
    return float(min(1.0, 2 * min(lo, hi)))


def _auc1(positive, scores):
    return float(placements(positive, scores)[0][0])


# --------------------------------------------------------------------------- Dice
def paired_bootstrap_global_dice(stats_a, stats_b, n_boot=2000, seed=0):
    """Paired bootstrap of the global-Dice difference A - B, averaged over R seed pairs.

    stats_a / stats_b: lists of R per-image (intersection, predicted, target) arrays [N, 3] in
    the same image order; images are resampled jointly for every run. Returns diff, se, p,
    n_used. Global Dice pools pixels over images, so no per-image test applies to it.
    """
    from tfmedbench import metrics

    def glob(counts, st):
        num, den = counts @ st[:, 0], counts @ (st[:, 1] + st[:, 2])
        return np.where(den > 0, 2 * num / np.where(den > 0, den, 1), 1.0)

    n = len(stats_a[0])
    point = np.mean([glob(np.ones((1, n)), a)[0] - glob(np.ones((1, n)), b)[0]
                     for a, b in zip(stats_a, stats_b)])  # fmt: skip
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_boot, 64):
        counts = metrics.resample_counts(rng, n, min(64, n_boot - start)).astype(np.float64)
        diffs.append(np.mean([glob(counts, a) - glob(counts, b)
                              for a, b in zip(stats_a, stats_b)], axis=0))  # fmt: skip
    diffs = np.concatenate(diffs)
    return dict(diff=float(point), se=float(diffs.std(ddof=1)), p=_boot_p(diffs),
                n_used=int(diffs.size))  # fmt: skip


def paired_dice(dice_a, dice_b, stats_a=None, stats_b=None, n_boot=2000, seed=0):
    """Wilcoxon signed-rank and paired t-test on per-image Dice, averaged over R seed pairs.

    dice_a / dice_b: lists of R per-image Dice arrays [N] in the same image order. diff is the
    mean of A - B (the difference of the mean-per-image-Dice scores). Zero differences are
    dropped by Wilcoxon (its 'wilcox' rule); all-zero differences give p NaN (no evidence
    either way). With stats_a / stats_b (per-image sums), also "global": the paired bootstrap
    of the global-Dice difference (`paired_bootstrap_global_dice`).
    """
    if not dice_a or len(dice_a) != len(dice_b):
        raise ValueError("paired_dice needs the same number (>= 1) of runs of A and of B")
    d = np.mean([np.asarray(a, np.float64) - np.asarray(b, np.float64)
                 for a, b in zip(dice_a, dice_b)], axis=0)  # fmt: skip
    out = dict(diff=float(d.mean()) if d.size else math.nan, n_images=int(d.size),
               n_nonzero=int(np.count_nonzero(d)), wilcoxon_stat=math.nan, wilcoxon_p=math.nan,
               t=math.nan, df=math.nan, t_p=math.nan, runs=len(dice_a))  # fmt: skip
    if stats_a is not None and stats_b is not None:
        out["global"] = paired_bootstrap_global_dice(stats_a, stats_b, n_boot=n_boot, seed=seed)
    if np.count_nonzero(d) == 0:
        return out
    w = sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    out.update(wilcoxon_stat=float(w.statistic), wilcoxon_p=float(w.pvalue))
    if d.size >= 2 and d.std() > 0:
        t = sps.ttest_1samp(d, 0.0)
        out.update(t=float(t.statistic), df=float(d.size - 1), t_p=float(t.pvalue))
    return out


# --------------------------------------------------------------------------- runs
def compare_runs(preds_a, preds_b, scored=None, level=0.95):
    """Paired tests of initialization A vs B per seed pair and pooled over the seed pairs.

    preds_a / preds_b: {seed: Predictions}. Every run is aligned to the first run of A by
    image_id (refused when test sets differ; classification labels must agree). Returns
    {"kind", "seeds", "per_seed": [{"seed", ...}], "pooled": result} or None without a common
    seed.
    """
    seeds = sorted(set(preds_a) & set(preds_b))
    if not seeds:
        return None
    ref = preds_a[seeds[0]]
    runs_a, runs_b, stats_a, stats_b = [], [], [], []
    for seed in seeds:
        for runs, st, p in ((runs_a, stats_a, preds_a[seed]), (runs_b, stats_b, preds_b[seed])):
            if p.kind != ref.kind:
                raise UserError(f"{p.path} is {p.kind}, {ref.path} is {ref.kind}; cannot pair them")
            idx = order_like(ref, p)
            if p.kind == "classification":
                if p.label_names != ref.label_names or not np.array_equal(
                    p.labels[idx], ref.labels
                ):
                    raise UserError(
                        f"{p.path} and {ref.path} hold different labels for the same images"
                    )
                runs.append(p.scores[idx])
                st.append(None)
            else:
                runs.append(p.dice[idx])
                st.append(None if p.dice_stats is None else p.dice_stats[idx])
    out = {"kind": ref.kind, "seeds": seeds, "per_seed": []}
    both = all(x is not None for x in stats_a + stats_b)
    if ref.kind == "classification":

        def test(a, b, sa, sb):
            return paired_auc(ref.labels, a, b, ref.label_names, scored, level)

    else:

        def test(a, b, sa, sb):
            return paired_dice(a, b, sa if both else None, sb if both else None)

    for i, seed in enumerate(seeds):
        out["per_seed"].append(dict(test([runs_a[i]], [runs_b[i]], [stats_a[i]], [stats_b[i]]),
                                    seed=seed))  # fmt: skip
    out["pooled"] = test(runs_a, runs_b, stats_a, stats_b)
    return out
