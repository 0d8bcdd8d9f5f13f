"""NIH Shenzhen (task TXC): `tfmedbench_nih_shenzhen` example -> (grey image, [tuberculosis])."""

import tensorflow as tf


def adapt(example, recipe, seed=0):
    """uint8 [H, W, 1] image and float32 [1] target (1.0 = tuberculosis)."""
    del recipe, seed  # one output, no options
    label = tf.cast(tf.reshape(example["label"], [1]), tf.float32)
    return example["image"], label
