"""`tfmedbench rescore RUN_DIR`: recompute a finished run's metrics.json from its predictions.

The test predictions are stored keyed by image id (predictions.npz), so a metric option can be
changed after training -- which Dice aggregate is the score, inside the DRIVE field of view or
over the whole image, which labels enter the mean AUC -- without training again. The previous
metrics are kept under `rescored_from`.
"""

from __future__ import annotations

from tfmedbench.errors import UserError
from tfmedbench.tasks import Recipe
from tfmedbench.train import predictions as predictions_io
from tfmedbench.train.rundir import METRICS, PREDICTIONS, RunDir, read_json

# Recipe fields that only change how stored predictions are scored.
METRIC_FIELDS = ("dice_score", "score_region", "scored_labels")


def rescore(run_dir, overrides=None):
    """Rewrite RUN_DIR/metrics.json with the recipe's metric fields changed by `overrides`."""
    from tfmedbench.train.evaluate import score

    rd = RunDir(run_dir)
    if not rd.finished():
        raise UserError(f"{run_dir}: not a finished run (no metrics.json with status ok)")
    overrides = dict(overrides or {})
    bad = sorted(set(overrides) - set(METRIC_FIELDS))
    if bad:
        raise UserError(f"rescore changes only {', '.join(METRIC_FIELDS)}; not {', '.join(bad)} "
                        "(those change training: run fit again)")  # fmt: skip
    old = read_json(rd.file(METRICS))
    recipe = Recipe.from_dict(rd.read_config()["recipe"]).override(**overrides)
    arrays = predictions_io.read_arrays(rd.file(PREDICTIONS))
    if "image_id" not in arrays:
        raise UserError(f"{rd.file(PREDICTIONS)}: written before predictions were keyed by image "
                        "id; re-run the training to rescore it")  # fmt: skip
    try:
        value, per_class, extra, ci, _ = score(recipe, arrays, seed=int(old.get("seed", 0)))
    except (KeyError, ValueError) as err:
        raise UserError(f"{rd.file(PREDICTIONS)}: cannot rescore ({err})") from None
    previous = {k: old.get(k) for k in ("score", "per_class", "extra", "ci")}
    new = dict(old, score=value, per_class=per_class, extra=extra, ci=ci, recipe=recipe.to_dict(),
               rescored_from=dict(previous, recipe_changes=overrides))  # fmt: skip
    rd.write_metrics(new)
    return new
