"""Test evaluation of a trained model: exact metrics on all gathered predictions, per-run
bootstrap confidence intervals, and predictions keyed by image id."""

from __future__ import annotations

import numpy as np

from tfmedbench import metrics as metrics_lib

# Bootstrap resamples of the test set for each run's CI (test-set variability of one model).
BOOTSTRAP_RESAMPLES = 2000


def _order(index, ids):
    """Gathered outputs in split order, with the image id of each row."""
    order = np.argsort(index, kind="stable")
    index = index[order]
    if len(set(index.tolist())) != len(index):
        raise RuntimeError("evaluation returned an example twice (distributed split bug)")
    return order, np.asarray([ids[int(i)] for i in index])


def classification(recipe, outputs, targets, seed):
    per_class = metrics_lib.per_class_auc(targets, outputs, recipe.labels)
    score = metrics_lib.mean_defined(per_class, recipe.scored)
    extra = {
        "undefined_classes": [k for k in recipe.scored if per_class[k] is None],
        "n_test": int(len(targets)),
    }
    ci = metrics_lib.bootstrap_auc(targets, outputs, recipe.labels, recipe.scored,
                                   n_boot=BOOTSTRAP_RESAMPLES, seed=seed)
    arrays = {"scores": outputs.astype(np.float32), "labels": targets.astype(np.float32),
              "label_names": np.asarray(recipe.labels)}  # fmt: skip
    return score, per_class, extra, ci, arrays


def segmentation(recipe, stats, seed):
    per_image_mean, global_dice, per_image = metrics_lib.dice_from_stats(stats)
    score = global_dice if recipe.dice_score == "global" else per_image_mean
    extra = {
        "dice_global": global_dice,
        "dice_per_image_mean": per_image_mean,
        "dice_score": recipe.dice_score,
        "score_region": recipe.score_region,
        "empty_mask_rule": metrics_lib.EMPTY_MASK_RULE,
        "n_test": int(len(stats)),
    }
    ci = metrics_lib.bootstrap_dice(stats, n_boot=BOOTSTRAP_RESAMPLES, seed=seed,
                                    score=recipe.dice_score)
    arrays = {"dice_stats": stats.astype(np.float64), "dice_per_image": per_image}
    return score, {recipe.labels[0]: score}, extra, ci, arrays


def evaluate(trainer, recipe, test_ds, ids, seed=0):
    """Score the test split; `ids` maps the pipeline's example index to its image id."""
    outputs, targets, index = trainer.predict(test_ds)
    order, image_ids = _order(index, ids)
    outputs, targets = outputs[order], targets[order]
    if recipe.kind == "classification":
        score, per_class, extra, ci, arrays = classification(recipe, outputs, targets, seed)
    else:
        score, per_class, extra, ci, arrays = segmentation(recipe, outputs, seed)
    arrays["image_id"] = image_ids
    return {"score": score, "per_class": per_class, "extra": extra, "ci": ci, "arrays": arrays}
