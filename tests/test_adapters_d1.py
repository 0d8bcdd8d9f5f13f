"""Adapters of the datasets_tfds builders TXC, VFS, DXC14, DXC5, LXS (TFDS dict -> image, target)."""

import numpy as np
import pytest
import tensorflow as tf

from tfmedbench.data.adapters import get_adapter
from tfmedbench.tasks import get_recipe


def _run_in_dataset(adapter, example, recipe):
    """Apply the adapter inside tf.data (graph mode), as the input pipeline does."""
    ds = tf.data.Dataset.from_tensors(example).map(lambda ex: adapter.adapt(ex, recipe))
    return next(iter(ds))


def test_shenzhen():
    adapter = get_adapter("tfmedbench_nih_shenzhen")
    recipe = get_recipe("TXC")
    for label in (0, 1):
        example = {
            "image": tf.zeros([6, 5, 1], tf.uint8),
            "label": tf.constant(label, tf.int64),
            "image_id": tf.constant("CHNCXR_0001_0"),
        }
        image, target = _run_in_dataset(adapter, example, recipe)
        assert image.dtype == tf.uint8 and image.shape == (6, 5, 1)
        assert target.dtype == tf.float32 and target.shape == (recipe.num_outputs,)
        assert float(target[0]) == label


def test_drive():
    adapter = get_adapter("tfmedbench_drive")
    vessels = np.zeros([584, 565, 1], np.uint8)
    vessels[100:110, 50:400] = 1
    example = {
        "image": tf.fill([584, 565, 3], tf.constant(7, tf.uint8)),
        "vessel_mask": tf.constant(vessels),
        "fov_mask": tf.ones([584, 565, 1], tf.uint8),
        "image_id": tf.constant("21_training"),
    }
    image, target = _run_in_dataset(adapter, example, get_recipe("VFS"))
    assert image.dtype == tf.uint8 and image.shape == (584, 565, 3)
    assert target.dtype == tf.float32 and target.shape == (584, 565, 1)
    np.testing.assert_array_equal(target.numpy(), vessels.astype(np.float32))


def _cxr14_example(view="PA"):
    labels = np.zeros([14], np.uint8)
    labels[[2, 13]] = 1
    return {
        "image": tf.zeros([8, 8, 1], tf.uint8),
        "labels": tf.constant(labels),
        "image_id": tf.constant("00000001_000.png"),
        "patient_id": tf.constant(1, tf.int32),
        "age": tf.constant(58, tf.int32),
        "sex": tf.constant("M"),
        "view": tf.constant(view),
    }


def test_chestxray14():
    adapter = get_adapter("tfmedbench_chestxray14")
    recipe = get_recipe("DXC14")
    image, target = _run_in_dataset(adapter, _cxr14_example(), recipe)
    assert image.dtype == tf.uint8 and image.shape == (8, 8, 1)
    assert target.dtype == tf.float32 and target.shape == (recipe.num_outputs,) == (14,)
    assert np.flatnonzero(target.numpy()).tolist() == [2, 13]


def test_chestxray14_frontal_filter():
    adapter = get_adapter("tfmedbench_chestxray14")
    examples = [_cxr14_example(v) for v in ("PA", "AP", "LL")]  # "LL" never occurs; must drop
    for frontal_only, expected in ((False, 3), (True, 2)):
        recipe = get_recipe("DXC14", frontal_only=frontal_only)
        ds = tf.data.Dataset.from_tensor_slices(
            {k: tf.stack([ex[k] for ex in examples]) for k in examples[0]}
        ).filter(lambda ex, r=recipe: adapter.filter_fn(ex, r))
        assert sum(1 for _ in ds) == expected
