"""NIH ChestX-ray14 (task DXC14): `tfmedbench_chestxray14` example -> (grey image, 14 labels)."""

import tensorflow as tf

FRONTAL_VIEWS = ("PA", "AP")  # every ChestX-ray14 image is one of these


def adapt(example, recipe, seed=0):
    """uint8 [H, W, 1] image and float32 [14] multi-hot target (CHESTXRAY14_LABELS order)."""
    del recipe, seed
    return example["image"], tf.cast(example["labels"], tf.float32)


def filter_active(recipe):
    """Whether filter_fn drops anything (else the split's size is known without reading it)."""
    return bool(recipe.frontal_only)


def filter_fn(example, recipe):
    """With `recipe.frontal_only`, keep PA/AP views (all of ChestX-ray14; kept for symmetry)."""
    if not recipe.frontal_only:
        return tf.constant(True)
    view = example["view"]
    return tf.reduce_any(tf.equal(view, tf.constant(FRONTAL_VIEWS)))
