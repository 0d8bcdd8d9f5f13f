"""Adapters of the DICOM builders PXS (SIIM pneumothorax) and ECC (RSNA PE)."""

import numpy as np
import pytest
import tensorflow as tf

from tfmedbench.data.adapters import get_adapter
from tfmedbench.tasks import get_recipe


def _run_in_dataset(adapter, example, recipe):
    """Apply the adapter inside tf.data (graph mode), as the input pipeline does."""
    ds = tf.data.Dataset.from_tensors(example).map(lambda ex: adapter.adapt(ex, recipe))
    return next(iter(ds))


@pytest.mark.parametrize("dtype", [tf.uint8, tf.uint16])
def test_siim_pneumothorax(dtype):
    adapter = get_adapter("tfmedbench_siim_pneumothorax")
    mask = np.zeros([40, 32, 1], np.uint8)
    mask[5:20, 3:9] = 1
    example = {
        "image": tf.fill([40, 32, 1], tf.constant(200, dtype)),
        "mask": tf.constant(mask),
        "image_id": tf.constant("1.2.276.0.7230010.3.1.4.8323329.1"),
        "has_pneumothorax": tf.constant(True),
    }
    image, target = _run_in_dataset(adapter, example, get_recipe("PXS"))
    assert image.dtype == dtype and image.shape == (40, 32, 1)
    assert target.dtype == tf.float32 and target.shape == (40, 32, 1)
    np.testing.assert_array_equal(target.numpy(), mask.astype(np.float32))


def test_rsna_pe():
    adapter = get_adapter("tfmedbench_rsna_pe")
    recipe = get_recipe("ECC")
    for label in (0, 1):
        example = {
            "image": tf.reshape(tf.range(16 * 12 * 3, dtype=tf.int32) % 256, [16, 12, 3]),
            "label": tf.constant(label, tf.int64),
            "study_id": tf.constant("6897fa9de148"),
            "series_id": tf.constant("2bfbb7fd2e8b"),
            "sop_id": tf.constant("c0f3cb036d06"),
            "slice_index": tf.constant(4, tf.int32),
            "negative_exam_for_pe": tf.constant(label == 0),
        }
        example["image"] = tf.cast(example["image"], tf.uint8)
        image, target = _run_in_dataset(adapter, example, recipe)
        assert image.dtype == tf.uint8 and image.shape == (16, 12, 3)
        np.testing.assert_array_equal(image.numpy(), example["image"].numpy())
        assert target.dtype == tf.float32 and target.shape == (recipe.num_outputs,)
        assert float(target[0]) == label
