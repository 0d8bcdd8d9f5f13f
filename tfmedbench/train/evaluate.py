"""Test evaluation of a trained model: exact metrics on all gathered predictions, per-run
bootstrap confidence intervals, and predictions keyed by image id -- from which `rescore`
recomputes a finished run's metrics (e.g. after choosing another Dice aggregate or region)."""

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
                                   n_boot=BOOTSTRAP_RESAMPLES, seed=seed)  # fmt: skip
    arrays = {"scores": outputs.astype(np.float32), "labels": targets.astype(np.float32),
              "label_names": np.asarray(recipe.labels)}  # fmt: skip
    return score, per_class, extra, ci, arrays


def segmentation(recipe, stats_all, seed):
    """stats_all: [N, 3] whole-image sums, or [N, 6] with the FOV sums after them (DRIVE)."""
    stats_all = np.asarray(stats_all, np.float64)
    arrays = {"dice_stats": stats_all[:, :3]}
    if stats_all.shape[1] == 6:
        arrays["dice_stats_fov"] = stats_all[:, 3:]
    if recipe.score_region == "fov" and "dice_stats_fov" not in arrays:
        raise ValueError(f"{recipe.code}: score_region=fov needs a field-of-view mask")
    stats = arrays["dice_stats_fov" if recipe.score_region == "fov" else "dice_stats"]
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
    if "dice_stats_fov" in arrays:
        extra["dice_global_fov" if recipe.score_region == "image" else "dice_global_image"] = (
            metrics_lib.dice_from_stats(arrays["dice_stats_fov" if recipe.score_region == "image"
                                               else "dice_stats"])[1])  # fmt: skip
    ci = metrics_lib.bootstrap_dice(stats, n_boot=BOOTSTRAP_RESAMPLES, seed=seed,
                                    score=recipe.dice_score)  # fmt: skip
    arrays["dice_per_image"] = per_image
    return score, {recipe.labels[0]: score}, extra, ci, arrays


def score(recipe, arrays, seed=0):
    """Metrics of predictions already gathered (the arrays of predictions.npz)."""
    if recipe.kind == "classification":
        return classification(recipe, arrays["scores"], arrays["labels"], seed)
    stats = arrays["dice_stats"]
    if "dice_stats_fov" in arrays:
        stats = np.concatenate([stats, arrays["dice_stats_fov"]], axis=1)
    return segmentation(recipe, stats, seed)


def evaluate(trainer, recipe, test_ds, ids, seed=0):
    """Score the test split; `ids` maps the pipeline's example index to its image id."""
    outputs, targets, index = trainer.predict(test_ds)
    order, image_ids = _order(index, ids)
    outputs, targets = outputs[order], targets[order]
    if recipe.kind == "classification":
        result = classification(recipe, outputs, targets, seed)
    else:
        result = segmentation(recipe, outputs, seed)
    score_, per_class, extra, ci, arrays = result
    arrays["image_id"] = image_ids
    return {"score": score_, "per_class": per_class, "extra": extra, "ci": ci, "arrays": arrays}
