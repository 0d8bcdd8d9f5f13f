"""DRIVE (task VFS): `tfmedbench_drive` example -> (RGB image, vessel mask).

The FOV mask stays in the example (it is not part of the training target); the benchmark scores
Dice over the whole image, as the original code does.
"""

import tensorflow as tf


def adapt(example, recipe, seed=0):
    """uint8 [584, 565, 3] image and float32 [584, 565, 1] vessel mask in {0, 1}."""
    del recipe, seed
    return example["image"], tf.cast(example["vessel_mask"], tf.float32)
