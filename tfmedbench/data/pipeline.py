"""tf.data pipelines for a task: TFDS split -> adapt -> (cache) -> shuffle -> augment -> batch.

Two shapes, same elements in the same order (tested):
  cached:   read -> decode -> adapt -> deterministic stage -> cache -> shuffle -> random stage
  uncached: read (images still encoded) -> shuffle -> ONE map: decode, adapt, both stages
The uncached shape shuffles encoded bytes (a 2048-example buffer of 1024 px radiographs holds
~2 GiB decoded, a fraction of that encoded; an epoch's first batch no longer waits for the
whole buffer to be decoded), filters before decoding, and does all per-example work in one
parallel map, as a DataLoader worker does (throughput: benchmarks/RESULTS.md).

Yields (image float32 [B, S, S, 3] ImageNet-normalised, target) for training and validation;
with `recipe.test_time == "tencrop"` the test split yields [B, 10, S, S, 3] (TenCrop of the
256-resized image, the original code's test-time augmentation). Targets: float32 [B, K] for
classification, [B, S, S, 1] binary masks for segmentation.
"""

from __future__ import annotations

import tensorflow as tf

from tfmedbench.data import seg_augment, seg_augment_tf, transforms
from tfmedbench.data.adapters import get_adapter

AUTOTUNE = tf.data.AUTOTUNE
# Batches prepared ahead of the training step (the DataLoader's prefetch_factor is 2 per worker).
PREFETCH_BATCHES = 2
# Cache decoded examples in memory when the encoded split is below this size (decoded images are
# several times larger than their PNG bytes).
AUTO_CACHE_MAX_ENCODED_BYTES = 256 * 1024 * 1024


def dataset_options():
    """The tf.data options of every tfmedbench dataset.

    Autotuning is off: its background model thread delayed the *destruction* of an iterator by
    up to its current optimisation period (measured 1.2-2.6 s, idle CPU, on about one iterator
    in three; benchmarks/RESULTS.md), i.e. per epoch for each validation pass. Without it,
    AUTOTUNE parallelism means min(16, cores) and prefetch is fixed, as a DataLoader's workers
    and prefetch_factor are; steady throughput did not drop.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return options


def should_cache(recipe, builder, split):
    if recipe.cache == "memory":
        return True
    if recipe.cache == "none":
        return False
    num_bytes = builder.info.splits[split].num_bytes
    return 0 < num_bytes <= AUTO_CACHE_MAX_ENCODED_BYTES


def filtered(recipe):
    """Whether the recipe's adapter drops examples (the split's size is then unknown)."""
    adapter = get_adapter(recipe.builder)
    return hasattr(adapter, "filter_fn") and adapter.filter_active(recipe)


def batches_per_epoch(recipe, builder, split, batch_size):
    """Full batches in one pass over `split`, or None when a filter makes it unknown."""
    if filtered(recipe):
        return None
    return num_examples(builder, split) // batch_size


def describe(recipe, builder, split):
    """The pipeline shape `make_dataset` builds for `split` (printed by fit)."""
    if should_cache(recipe, builder, split):
        return f"decode+cache,prefetch={PREFETCH_BATCHES}"
    return f"fused-decode,prefetch={PREFETCH_BATCHES}"


def element_seed(seed_value, base_seed):
    """A stateless-op seed of shape [2] from a per-element random int64."""
    return tf.stack([seed_value, tf.cast(base_seed, tf.int64)])


def deterministic_stage(recipe, split, training):
    """Per-example work that does not depend on randomness (runs before the cache)."""
    size = recipe.image_size

    def classification(image, target):
        if training and recipe.augmentation == "xray_cls":
            return image, target  # RandomResizedCrop works on the full image
        image = transforms.to_float_rgb(image)
        if split == "test" and recipe.test_time == "tencrop":
            image = transforms.ten_crop(transforms.resize(image, recipe.resize_size), size)
        elif recipe.augmentation == "xray_cls":
            # Validation of the x-ray recipes: Resize(256) -> CenterCrop(224), as the original.
            image = transforms.center_crop(transforms.resize(image, recipe.resize_size), size)
        else:
            image = transforms.resize(image, size)
        return image, target

    def segmentation(image, mask):
        image = transforms.to_float_rgb(image)
        image = transforms.resize(image, size)
        mask = tf.cast(transforms.resize(mask, size, method="nearest") > 0.5, tf.float32)
        if training and recipe.augmentation == "xray_seg":
            # albumentations works on uint8 images, as the original (cv2-loaded) pipeline.
            image = tf.cast(tf.round(tf.clip_by_value(image, 0, 1) * 255), tf.uint8)
            mask = tf.cast(mask, tf.uint8)
        return image, mask

    return classification if recipe.kind == "classification" else segmentation


def random_stage(recipe, training, base_seed):
    """Per-example random augmentation and normalisation (runs after the cache)."""
    size = recipe.image_size

    def apply(image, target, seed_value):
        seed = element_seed(seed_value, base_seed)
        if training and recipe.augmentation == "xray_cls":
            image = transforms.xray_cls_train(image, size, seed)  # crops before float/RGB
        elif training and recipe.augmentation == "xray_seg":
            backend = seg_augment_tf if recipe.seg_augment == "tf" else seg_augment
            image, target = backend.xray_seg_train(image, target, size, seed_value)
            image = transforms.to_float_rgb(image)
            target = tf.cast(target, tf.float32)
        return transforms.normalize(image, recipe.normalization), target

    return apply


def image_feature_keys(builder):
    """Top-level image features of a builder (decoded late, in the fused map)."""
    import tensorflow_datasets as tfds

    return sorted(k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image))


def make_dataset(
    recipe,
    builder,
    split,
    *,
    training,
    batch_size,
    seed=0,
    shard=None,
    repeat=False,
):
    """The batched dataset of `split` (`shard`=(num, index) for per-worker input functions).

    `repeat=True` repeats the batched epochs forever (reshuffled and re-augmented each pass, as
    a new iterator would be) for one iterator across epochs: creating an iterator instantiates
    every map function, ~0.15 s for the TF-native segmentation augmentation, per epoch.
    """
    import tensorflow_datasets as tfds

    adapter = get_adapter(recipe.builder)
    cache = should_cache(recipe, builder, split)
    late_keys = [] if cache else image_feature_keys(builder)
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    ds = builder.as_dataset(
        split=split,
        shuffle_files=training,
        read_config=read_config,
        decoders={k: tfds.decode.SkipDecoding() for k in late_keys} or None,
    )
    if shard is not None:
        ds = ds.shard(*shard)
    if filtered(recipe):  # label fields only: runs before any image is decoded
        ds = ds.filter(lambda ex: adapter.filter_fn(ex, recipe))
    fixed = deterministic_stage(recipe, split, training)
    augment = random_stage(recipe, training, seed)

    def decode(ex):
        features = builder.info.features
        return {k: (features[k].decode_example(v) if k in late_keys else v) for k, v in ex.items()}

    def prepare(ex):
        return fixed(*adapter.adapt(decode(ex), recipe, seed))

    if cache:
        ds = ds.map(prepare, num_parallel_calls=AUTOTUNE).cache()
    if training:
        ds = ds.shuffle(recipe.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    # One random int64 per element, re-drawn every epoch but reproducible from `seed`.
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def per_example(element, r):
        image, target = element if cache else prepare(element)
        return augment(image, target, r)

    ds = tf.data.Dataset.zip((ds, randoms)).map(
        per_example, num_parallel_calls=AUTOTUNE, deterministic=True
    )
    ds = ds.batch(batch_size, drop_remainder=training)
    if repeat:
        ds = ds.repeat()
    return ds.with_options(dataset_options()).prefetch(PREFETCH_BATCHES)


def num_examples(builder, split):
    return builder.info.splits[split].num_examples
