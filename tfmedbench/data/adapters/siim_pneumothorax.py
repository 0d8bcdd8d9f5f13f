"""SIIM-ACR pneumothorax (task PXS): `tfmedbench_siim_pneumothorax` example -> (image, mask)."""

import tensorflow as tf


def adapt(example, recipe, seed=0):
    """Grey image [H, W, 1] (uint8, or uint16 for the `uint16` config) and float32 [H, W, 1]
    pneumothorax mask in {0, 1} (the union of the image's RLE regions; all 0 when negative)."""
    del recipe, seed  # one mask channel, no options
    return example["image"], tf.cast(example["mask"], tf.float32)
