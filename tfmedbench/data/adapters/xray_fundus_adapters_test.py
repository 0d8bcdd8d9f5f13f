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


RAW = np.array([1, 0, -1, -2, -1, 1, 0, -2, -1, -1, 1, 0, -1, -2], np.int8)


def _chexpert_example(frontal=True):
    return {
        "image": tf.zeros([8, 8, 1], tf.uint8),
        "labels": tf.constant(RAW),
        "frontal": tf.constant(frontal),
        "ap_pa": tf.constant("AP" if frontal else ""),
        "sex": tf.constant("Female"),
        "age": tf.constant(60, tf.int32),
        "patient_id": tf.constant(1, tf.int32),
        "image_id": tf.constant("train/patient00001/study1/view1_frontal.jpg"),
    }


@pytest.mark.parametrize(
    "policy, low, high",
    [("u-ones", 1.0, 1.0), ("u-zeros", 0.0, 0.0), ("lsr-ones", 0.55, 0.85), ("lsr-zeros", 0.0, 0.3)],
)
def test_chexpert_uncertainty_policies(policy, low, high):
    """lsr_draw=per-run: one relabel per (run seed, image), applied when the example is read."""
    adapter = get_adapter("tfmedbench_chexpert")
    recipe = get_recipe("DXC5", uncertainty_policy=policy, lsr_draw="per-run")
    uncertain = RAW == -1

    def targets(image_ids, seed):
        examples = [dict(_chexpert_example(), image_id=tf.constant(i)) for i in image_ids]
        ds = tf.data.Dataset.from_tensor_slices(
            {k: tf.stack([ex[k] for ex in examples]) for k in examples[0]}
        )
        out = []
        for image, target in ds.map(lambda ex: adapter.adapt(ex, recipe, seed)):
            target = target.numpy()
            assert image.shape == (8, 8, 1) and target.dtype == np.float32
            assert target.shape == (14,)
            out.append(target)
        return np.stack(out)

    ids = [f"train/patient{i:05d}/study1/view1_frontal.jpg" for i in range(20)]
    got = targets(ids, seed=0)
    np.testing.assert_array_equal(got[:, RAW == 1], 1.0)
    np.testing.assert_array_equal(got[:, RAW == 0], 0.0)
    np.testing.assert_array_equal(got[:, RAW == -2], 0.0)  # blank -> 0 under every policy
    draws = got[:, uncertain]  # 100 values
    assert np.all(draws >= low) and np.all(draws <= high)
    # As the original, a fixed relabel per run: reading again gives the same values ...
    np.testing.assert_array_equal(targets(ids, seed=0), got)
    if low != high:
        # ... different images and another run seed draw anew, spread over the whole range.
        width = high - low
        assert draws.min() < low + 0.2 * width and draws.max() > high - 0.2 * width
        assert len(np.unique(draws)) == draws.size
        assert not np.array_equal(targets(ids, seed=1), got)


def test_chexpert_lsr_stateless_seed_is_reproducible():
    from tfmedbench.data.adapters import chexpert

    a = chexpert.apply_uncertainty_policy(RAW, "lsr-ones", seed=[1, 2])
    b = chexpert.apply_uncertainty_policy(RAW, "lsr-ones", seed=[1, 2])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_chexpert_requires_a_policy():
    adapter = get_adapter("tfmedbench_chexpert")
    with pytest.raises(ValueError, match="uncertainty_policy"):
        adapter.adapt(_chexpert_example(), get_recipe("DXC5", uncertainty_policy=""))


def test_chexpert_frontal_filter():
    adapter = get_adapter("tfmedbench_chexpert")
    examples = [_chexpert_example(f) for f in (True, False, True)]
    for frontal_only, expected in ((False, 3), (True, 2)):
        recipe = get_recipe("DXC5", frontal_only=frontal_only)
        ds = tf.data.Dataset.from_tensor_slices(
            {k: tf.stack([ex[k] for ex in examples]) for k in examples[0]}
        ).filter(lambda ex, r=recipe: adapter.filter_fn(ex, r))
        assert sum(1 for _ in ds) == expected


def test_montgomery():
    adapter = get_adapter("tfmedbench_montgomery")
    mask = np.zeros([10, 9, 1], np.uint8)
    mask[2:8, 1:4] = 1
    example = {
        "image": tf.fill([10, 9, 1], tf.constant(65535, tf.uint16)),
        "mask": tf.constant(mask),
        "image_id": tf.constant("MCUCXR_0001_0"),
        "label": tf.constant(0, tf.int64),
    }
    image, target = _run_in_dataset(adapter, example, get_recipe("LXS"))
    assert image.dtype == tf.uint16 and image.shape == (10, 9, 1)
    assert target.dtype == tf.float32 and target.shape == (10, 9, 1)
    np.testing.assert_array_equal(target.numpy(), mask.astype(np.float32))


def test_chexpert_per_read_draw_is_the_default_and_redraws_at_every_read():
    """The original redraws U(0.55, 0.85) at every __getitem__: by default the adapter keeps
    the raw labels and `target_stage` draws with each read's element seed."""
    from tfmedbench.data.adapters import chexpert

    recipe = get_recipe("DXC5")
    assert (recipe.uncertainty_policy, recipe.lsr_draw) == ("lsr-ones", "per-read")
    example = dict(_chexpert_example(), image_id=tf.constant("train/patient00001/study1/v.jpg"))
    _, raw = get_adapter("tfmedbench_chexpert").adapt(example, recipe, 0)
    np.testing.assert_array_equal(raw.numpy(), RAW.astype(np.float32))  # raw until read
    reads = [chexpert.target_stage(raw, recipe, tf.constant([0, s], tf.int64)).numpy()
             for s in range(8)]
    again = chexpert.target_stage(raw, recipe, tf.constant([0, 3], tf.int64)).numpy()
    np.testing.assert_array_equal(again, reads[3])  # a read's seed fixes its draw
    uncertain = RAW == -1
    draws = np.stack([r[uncertain] for r in reads])
    assert np.all((draws >= 0.55) & (draws <= 0.85))
    assert len(np.unique(draws)) == draws.size  # every read draws anew
    for r in reads:
        np.testing.assert_array_equal(r[RAW == 1], 1.0)
        np.testing.assert_array_equal(r[(RAW == 0) | (RAW == -2)], 0.0)  # blank -> 0
