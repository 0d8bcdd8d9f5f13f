"""make_dataset's two shapes (cached: decode before the cache; uncached: shuffle encoded bytes,
decode in the one fused map) must yield the same elements in the same order."""

import importlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfmedbench.data import pipeline, prepare
from tfmedbench.tasks import get_recipe

# task -> (builder test module, write_tree kwargs)
FIXTURES = {
    "TXC": ("nih_shenzhen", {"n_per_class": 6}),
    "LXS": ("montgomery", {"n_per_class": 6}),  # TF-native or albumentations random stage
    "DXC5": ("chexpert", {"n_train_patients": 12}),  # frontal filter, LSR labels
}
CASES = [("TXC", {}), ("LXS", {}), ("LXS", {"seg_augment": "albumentations"}), ("DXC5", {})]


def tiny_built(task, tmp_path, **extra):
    """(tiny recipe, built builder) for `task` on its builder's official-layout fixture tree."""
    module, kwargs = FIXTURES[task]
    tests = importlib.import_module(f"datasets_tfds.{module}.{module}_dataset_builder_test")
    tests.write_tree(tmp_path / "raw", **kwargs)
    recipe = get_recipe(task, image_size=32, resize_size=36, shuffle_buffer=8, **extra)
    builder = prepare.build(recipe.builder, str(tmp_path / "raw"), str(tmp_path / "tfds"),
                            verbose=False)
    return recipe, builder


def batches(ds):
    return [[np.asarray(t) for t in b] for b in tfds.as_numpy(ds)]


@pytest.mark.parametrize("task, extra", CASES)
def test_uncached_equals_cached(task, extra, tmp_path):
    recipe, builder = tiny_built(task, tmp_path, **extra)
    assert "image" in pipeline.image_feature_keys(builder)
    for split, training in (("train", True), ("validation", False)):
        got = {}
        for cache in ("memory", "none"):
            r = recipe.override(cache=cache)
            assert pipeline.should_cache(r, builder, split) == (cache == "memory")
            ds = pipeline.make_dataset(r, builder, split, training=training, batch_size=2, seed=3)
            got[cache] = [batches(ds), batches(ds)]  # two epochs: reshuffled, re-augmented
        assert got["memory"][0], (task, split)
        assert len(got["memory"][0]) == len(got["none"][0])
        for epoch in range(2):
            for a, b in zip(got["memory"][epoch], got["none"][epoch]):
                for x, y in zip(a, b):
                    np.testing.assert_array_equal(x, y, err_msg=f"{task} {split} {epoch}")
        if training:  # the second epoch is a different shuffle/augmentation
            assert any(
                not np.array_equal(a[0], b[0])
                for a, b in zip(got["none"][0], got["none"][1])
            )


@pytest.mark.parametrize("task", ["TXC", "LXS"])
def test_repeated_dataset_equals_one_iterator_per_epoch(task, tmp_path):
    # fit takes batches_per_epoch batches per epoch from one iterator over repeat=True.
    recipe, builder = tiny_built(task, tmp_path)
    k = pipeline.batches_per_epoch(recipe, builder, "train", 2)
    assert k == builder.info.splits["train"].num_examples // 2
    args = {"training": True, "batch_size": 2, "seed": 5}
    per_epoch = pipeline.make_dataset(recipe, builder, "train", **args)
    expected = batches(per_epoch) + batches(per_epoch)  # two epochs, two iterators
    assert len(expected) == 2 * k
    repeated = pipeline.make_dataset(recipe, builder, "train", repeat=True, **args)
    got = batches(repeated.take(2 * k))
    for a, b in zip(expected, got, strict=True):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_filtered_split_has_unknown_epoch_length():
    assert pipeline.filtered(get_recipe("DXC5", frontal_only=True))
    assert not pipeline.filtered(get_recipe("DXC5", frontal_only=False))
    assert not pipeline.filtered(get_recipe("TXC"))


def test_autotune_is_off_in_fit_datasets():
    # Autotuning's model thread delayed iterator teardown by seconds (benchmarks/RESULTS.md).
    options = pipeline.dataset_options()
    assert options.autotune.enabled is False
    assert options.deterministic is True
