"""NIH Montgomery (task LXS): `tfmedbench_montgomery` example -> (grey image, lung mask).

The image is uint16 (see the builder README: 8-bit sources are stored times 257), which the
adapter contract allows; the pipeline scales by the dtype's maximum.
"""

import tensorflow as tf


def adapt(example, recipe, seed=0):
    """uint16 [H, W, 1] image and float32 [H, W, 1] lung mask in {0, 1} (left OR right lung)."""
    del recipe, seed
    return example["image"], tf.cast(example["mask"], tf.float32)
