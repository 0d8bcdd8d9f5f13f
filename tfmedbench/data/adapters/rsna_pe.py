"""RSNA STR PE (task ECC): `tfmedbench_rsna_pe` example -> (2.5D slice image, [pe_present])."""

import tensorflow as tf


def adapt(example, recipe, seed=0):
    """uint8 [H, W, 3] image (PE-windowed previous, current, next slice) and float32 [1]
    target: 1.0 when a PE is visible on the current slice (train.csv pe_present_on_image)."""
    del recipe, seed  # one output, no options
    return example["image"], tf.cast(tf.reshape(example["label"], [1]), tf.float32)


def example_id(example):
    """RSNA-PE examples are slices: their SOP instance UID is the id."""
    return example["sop_id"]
