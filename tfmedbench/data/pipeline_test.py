"""make_dataset's two shapes (cached: decode before the cache; uncached: shuffle encoded bytes,
decode in the one fused map) must yield the same elements in the same order."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets_tfds.chexpert import fake_data as chexpert_data
from datasets_tfds.montgomery import fake_data as montgomery_data
from datasets_tfds.nih_shenzhen import fake_data as shenzhen_data
from tfmedbench.data import pipeline, prepare
from tfmedbench.tasks import get_recipe

# task -> (the builder's fake-data writer, its kwargs)
FIXTURES = {
    "TXC": (shenzhen_data.write_tree, {"n_images": 12, "size": (12, 10)}),
    "LXS": (montgomery_data.write_tree, {"n_per_class": 6}),  # TF-native or albumentations stage
    "DXC5": (chexpert_data.write_tree, {"n_train_patients": 12}),  # frontal filter, LSR labels
}
CASES = [("TXC", {}), ("LXS", {}), ("LXS", {"seg_augment": "albumentations"}), ("DXC5", {})]


def tiny_built(task, tmp_path, **extra):
    """(tiny recipe, built builder) for `task` on its builder's official-layout fixture tree."""
    write_tree, kwargs = FIXTURES[task]
    write_tree(tmp_path / "raw", **kwargs)
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
            reader = pipeline.reader_for(r, builder, split, training=training, seed=3)
            got[cache] = [
                batches(pipeline.make_dataset(r, builder, split, training=training, batch_size=2,
                                              seed=3, epoch=e, reader=reader))
                for e in (0, 1)  # two epochs: reshuffled, re-augmented
            ]  # fmt: skip
        assert got["memory"][0], (task, split)
        assert len(got["memory"][0]) == len(got["none"][0])
        for epoch in range(2):
            for a, b in zip(got["memory"][epoch], got["none"][epoch], strict=True):
                for x, y in zip(a, b):
                    np.testing.assert_array_equal(x, y, err_msg=f"{task} {split} {epoch}")
        if training:  # the second epoch is a different shuffle/augmentation
            assert any(
                not np.array_equal(a[0], b[0])
                for a, b in zip(got["none"][0], got["none"][1])
            )


@pytest.mark.parametrize("task", ["TXC", "LXS"])
def test_an_epoch_is_a_pure_function_of_seed_and_epoch(task, tmp_path):
    # What --resume relies on: epoch 2 rebuilt in a fresh reader (no epochs before it, no
    # cache filled yet) gives the batches the run's own epoch 2 gave.
    recipe, builder = tiny_built(task, tmp_path)
    args = {"training": True, "batch_size": 3, "seed": 5}
    reader = pipeline.reader_for(recipe, builder, "train", training=True, seed=5)
    run = [batches(pipeline.make_dataset(recipe, builder, "train", epoch=e, reader=reader, **args))
           for e in range(3)]  # fmt: skip
    fresh = batches(pipeline.make_dataset(recipe, builder, "train", epoch=2, **args))
    for a, b in zip(run[2], fresh, strict=True):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    n = builder.info.splits["train"].num_examples
    assert len(run[0]) == -(-n // 3)  # the last partial batch is kept (drop_last=False)
    assert sum(len(b[0]) for b in run[0]) == n


def test_cache_is_filled_once_for_all_epochs(tmp_path):
    recipe, builder = tiny_built("TXC", tmp_path, cache="memory")
    reader = pipeline.reader_for(recipe, builder, "train", training=True, seed=0)
    calls = []
    prepare = reader.prepare

    def counting(*args):
        import tensorflow as tf

        tf.py_function(lambda: calls.append(1) or 0, [], tf.int32)
        return prepare(*args)

    reader.prepare = counting
    for epoch in range(3):
        batches(pipeline.make_dataset(recipe, builder, "train", training=True, batch_size=4,
                                      epoch=epoch, reader=reader))  # fmt: skip
    assert len(calls) == builder.info.splits["train"].num_examples


def test_filtered_split_has_unknown_epoch_length():
    assert pipeline.filtered(get_recipe("DXC5", frontal_only=True))
    assert not pipeline.filtered(get_recipe("DXC5", frontal_only=False))
    assert not pipeline.filtered(get_recipe("TXC"))


def test_autotune_is_off_in_fit_datasets():
    # Autotuning's model thread delayed iterator teardown by seconds (benchmarks/RESULTS.md).
    options = pipeline.dataset_options()
    assert options.autotune.enabled is False
    assert options.deterministic is True
