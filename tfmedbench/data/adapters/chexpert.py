"""CheXpert (task DXC5): `tfmedbench_chexpert` example -> (grey image, 14 soft labels).

The builder stores raw labels (1 positive, 0 negative, -1 uncertain, -2 blank); the uncertainty
policy is applied here, per example and per epoch, as in the original code
(BenchmarkTransferLearning's CheXpert loader): blank -> 0 and uncertain ->
  u-ones: 1    u-zeros: 0    lsr-ones: U(0.55, 0.85)    lsr-zeros: U(0, 0.3)
LSR draws a fresh value every time an example is read (label smoothing, not a fixed relabel).
"""

import tensorflow as tf

from tfmedbench.tasks import UNCERTAINTY_POLICIES

POSITIVE, NEGATIVE, UNCERTAIN, BLANK = 1, 0, -1, -2
_UNCERTAIN_RANGE = {
    "u-ones": (1.0, 1.0),
    "u-zeros": (0.0, 0.0),
    "lsr-ones": (0.55, 0.85),
    "lsr-zeros": (0.0, 0.3),
}


def apply_uncertainty_policy(raw_labels, policy, seed=None):
    """float32 targets from raw int labels: 1 -> 1, 0 and -2 -> 0, -1 -> per `policy`.

    `seed`: optional stateless seed (shape [2] int) for reproducible LSR draws; None draws from
    the global TF random state.
    """
    if policy not in UNCERTAINTY_POLICIES:
        raise ValueError(
            f"CheXpert needs recipe.uncertainty_policy in {UNCERTAINTY_POLICIES}, got {policy!r}"
        )
    raw = tf.cast(raw_labels, tf.int32)
    low, high = _UNCERTAIN_RANGE[policy]
    shape = tf.shape(raw)
    if low == high:
        uncertain_value = tf.fill(shape, low)
    elif seed is None:
        uncertain_value = tf.random.uniform(shape, low, high)
    else:
        uncertain_value = tf.random.stateless_uniform(shape, seed, low, high)
    positive = tf.cast(tf.equal(raw, POSITIVE), tf.float32)
    return tf.where(tf.equal(raw, UNCERTAIN), uncertain_value, positive)


def adapt(example, recipe):
    """uint8 [H, W, 1] image and float32 [14] target in CHEXPERT_LABELS order."""
    return example["image"], apply_uncertainty_policy(example["labels"], recipe.uncertainty_policy)


def filter_fn(example, recipe):
    """With `recipe.frontal_only`, drop lateral views (keeps AP/PA radiographs)."""
    if not recipe.frontal_only:
        return tf.constant(True)
    return tf.cast(example["frontal"], tf.bool)
