"""CheXpert (task DXC5): `tfmedbench_chexpert` example -> (grey image, 14 soft labels).

The builder stores raw labels (1 positive, 0 negative, -1 uncertain, -2 blank); the uncertainty
policy is applied here, as in the original code (BenchmarkTransferLearning's CheXpert loader):
blank -> 0 and uncertain ->
  u-ones: 1    u-zeros: 0    lsr-ones: U(0.55, 0.85)    lsr-zeros: U(0, 0.3)
The original draws the LSR value in its Dataset's `__getitem__`, i.e. anew at every read (every
epoch), from the unseeded global `random`. Here (`recipe.lsr_draw="per-read"`, the default) the
draw happens in the pipeline's random stage from the element's stateless seed: new every epoch,
reproducible for a run seed, the same whether or not the pipeline caches. `lsr_draw="per-run"`
draws once per (run seed, image_id) instead: a fixed relabelling for the whole run.
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


def example_seed(image_id, seed):
    """A stateless-op seed [2] from the run seed and the image's id (its CSV path)."""
    id_hash = tf.strings.to_hash_bucket_fast(image_id, 2**62)
    return tf.stack([tf.cast(seed, tf.int64), id_hash])


def adapt(example, recipe, seed=0):
    """uint8 [H, W, 1] image and float32 [14] target in the builder's label order: the policy
    applied once per (run seed, image) for `lsr_draw="per-run"`, else the raw labels, which
    `target_stage` turns into targets at every read."""
    if recipe.lsr_draw == "per-read":
        return example["image"], tf.cast(example["labels"], tf.float32)
    labels = apply_uncertainty_policy(
        example["labels"], recipe.uncertainty_policy, seed=example_seed(example["image_id"], seed)
    )
    return example["image"], labels


def target_stage(target, recipe, seed):
    """Per read (random stage): apply the uncertainty policy with the element's seed."""
    if recipe.lsr_draw != "per-read":
        return target
    return apply_uncertainty_policy(target, recipe.uncertainty_policy, seed=seed)


def filter_active(recipe):
    """Whether filter_fn drops anything (else the split's size is known without reading it)."""
    return bool(recipe.frontal_only)


def filter_fn(example, recipe):
    """With `recipe.frontal_only`, drop lateral views (keeps AP/PA radiographs)."""
    if not recipe.frontal_only:
        return tf.constant(True)
    return tf.cast(example["frontal"], tf.bool)
