"""tf.data pipelines for a task: TFDS split -> adapt -> (cache) -> expand -> shuffle -> augment -> batch.

Every epoch is its own dataset, and everything random in it is a pure function of (run seed,
epoch): the file order, the shuffle and each example's augmentation seed (stateless ops on
[epoch key, position]). An epoch can therefore be rebuilt exactly -- `fit --resume` continues a
run with the very batches the uninterrupted run would have seen -- and nothing depends on
iterator state or tf.data's thread scheduling.

Two shapes, same elements in the same order when the split is one file (tested):
  cached:   read -> decode -> adapt -> deterministic stage -> cache -> shuffle -> random stage
  uncached: read (images still encoded) -> shuffle -> ONE map: decode, adapt, both stages
The uncached shape shuffles encoded bytes (a 2048-example buffer of 1024 px radiographs holds
~2 GiB decoded, a fraction of that encoded) and does all per-example work in one parallel map,
as a DataLoader worker does (throughput: benchmarks/RESULTS.md); large splits also get their
file order reshuffled each epoch from the epoch's seed. Both shapes batch the examples before
the last, element-wise step (grey -> RGB, normalisation, float targets), which runs per batch.
JPEG images (the builders' reduced-resolution configs) are decoded by `decode_feature`.

Training and validation yield (image float32 [B, S, S, 3], target); evaluation datasets
(`index=True`) add the example's position in the split's (unshuffled) order, so predictions can
be keyed by image id whatever the distribution strategy's split of a batch. With
`recipe.test_time == "tencrop"` the test split yields [B, 10, S, S, 3]. Targets: float32 [B, K]
for classification, [B, S, S, C] masks for segmentation (the test split of a dataset with a
field-of-view mask, DRIVE, carries the FOV as a second channel: Dice is computed both ways).
"""

from __future__ import annotations

import tensorflow as tf

from tfmedbench.data import augment
from tfmedbench.data.adapters import get_adapter

AUTOTUNE = tf.data.AUTOTUNE
# Batches prepared ahead of the training step (the DataLoader's prefetch_factor is 2 per worker).
PREFETCH_BATCHES = 2
# Cache decoded examples in memory when the encoded split is below this size (decoded images are
# several times larger than their PNG bytes).
AUTO_CACHE_MAX_ENCODED_BYTES = 256 * 1024 * 1024
# Seeds: epoch e of a run with seed s draws from key s * EPOCH_STRIDE + e + 1 (key 0 is unused).
EPOCH_STRIDE = 1_000_003


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


def epoch_key(seed, epoch):
    """The stateless seed key of one epoch of a run."""
    return int(seed) * EPOCH_STRIDE + int(epoch) + 1


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


def describe(recipe, builder, split):
    """The pipeline shape `make_dataset` builds for `split` (printed by fit)."""
    shape = "decode+cache" if should_cache(recipe, builder, split) else "fused-decode"
    return f"{shape},prefetch={PREFETCH_BATCHES},expansion={recipe.expansion}"


def image_feature_keys(builder):
    """Top-level image features of a builder (decoded late, in the fused map)."""
    import tensorflow_datasets as tfds

    return sorted(k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image))


def jpeg_feature_keys(builder):
    """Top-level JPEG image features (the reduced-resolution configs, datasets_tfds.resized)."""
    return [k for k in image_feature_keys(builder)
            if builder.info.features[k].encoding_format == "jpeg"]  # fmt: skip


def crop_decodable_keys(recipe, builder, training):
    """Grey JPEG features the training augmentation decodes itself, only inside its crop box.

    RandomResizedCrop keeps on average ~54% of the image, and `tf.image.decode_and_crop_jpeg`
    skips the rest of the entropy-decoded blocks' IDCT and colour work: the same pixels as a full
    decode then crop for grey JPEGs (tested bit for bit); for RGB JPEGs with subsampled chroma
    the crop's edge pixels differ by up to 4 grey levels (the chroma upsampling sees other
    neighbours), so those are decoded whole. -> the keys left encoded by `prepare`.
    """
    if not (training and recipe.kind == "classification" and recipe.augmentation == "xray_cls"):
        return []
    return [k for k in jpeg_feature_keys(builder) if builder.info.features[k].shape[-1] == 1]


def decode_feature(feature, value):
    """Decode one image feature. JPEG uses the accurate integer IDCT: TF's default
    (`dct_method=""`, libjpeg's fast IDCT) differed from PIL's decode by up to 8 grey levels on
    78% of the pixels of a 256 px q95 JPEG; INTEGER_ACCURATE equals PIL bit for bit and costs
    ~3% more time (benchmarks/RESULTS.md). Other formats: TFDS's own decoding."""
    if getattr(feature, "encoding_format", None) != "jpeg":
        return feature.decode_example(value)
    image = tf.io.decode_jpeg(value, channels=feature.shape[-1], dct_method="INTEGER_ACCURATE")
    image.set_shape(feature.shape)
    return image


def example_id(adapter, example):
    """The example's id string (adapters may name another feature, e.g. RSNA-PE's sop_id)."""
    return adapter.example_id(example) if hasattr(adapter, "example_id") else example["image_id"]


class _Reader:
    """Reads, filters and adapts one split; shared by every epoch of a run."""

    def __init__(self, recipe, builder, split, *, training, seed, keep_ids=None):
        self.recipe, self.builder, self.split, self.seed = recipe, builder, split, seed
        self.training = training
        self.adapter = get_adapter(recipe.builder)
        self.cache = should_cache(recipe, builder, split)
        # Decoded in `prepare` (not by TFDS): every image of an uncached split (see make_dataset),
        # and JPEG images always (their decode differs from TFDS's, see decode_feature).
        self.late_keys = jpeg_feature_keys(builder) if self.cache else image_feature_keys(builder)
        # ... except grey JPEGs of an uncached training split: the crop decodes them.
        self.encoded_keys = [] if self.cache else crop_decodable_keys(recipe, builder, training)
        # Ids kept by a label-efficiency subset, as sorted 58-bit hashes (searchsorted has no
        # string kernel; 1e5 ids collide with probability ~2e-8).
        self.keep_ids = None if keep_ids is None else tf.sort(
            tf.strings.to_hash_bucket_fast(tf.constant(sorted(keep_ids)), 2**58))
        self.fixed = augment.deterministic_stage(recipe, split, training)
        self._cached = None

    def records(self, file_seed=None):
        """Examples in the split's order (or a file order from `file_seed`), with their index."""
        import tensorflow_datasets as tfds

        ds = self.builder.as_dataset(
            split=self.split,
            shuffle_files=file_seed is not None,
            read_config=tfds.ReadConfig(shuffle_seed=file_seed, try_autocache=False),
            decoders={k: tfds.decode.SkipDecoding() for k in self.late_keys} or None,
        )
        ds = ds.enumerate()  # position in the read order: the evaluation index
        if filtered(self.recipe):  # label fields only: runs before any image is decoded
            ds = ds.filter(lambda i, ex: self.adapter.filter_fn(ex, self.recipe))
        if self.keep_ids is not None:  # a label-efficiency subset of the training split
            ds = ds.filter(lambda i, ex: self._kept(example_id(self.adapter, ex)))
        return ds

    def _kept(self, image_id):
        image_id = tf.strings.to_hash_bucket_fast(image_id, 2**58)
        pos = tf.searchsorted(self.keep_ids, tf.reshape(image_id, [1]))[0]
        pos = tf.minimum(pos, tf.size(self.keep_ids) - 1)
        return tf.equal(self.keep_ids[pos], image_id)

    def prepare(self, index, ex):
        """Decode, adapt and run the deterministic stage: (image, target, index, id hash)."""
        features = self.builder.info.features
        ex = {k: (decode_feature(features[k], v)
                  if k in self.late_keys and k not in self.encoded_keys else v)
              for k, v in ex.items()}  # fmt: skip
        image, target = self.adapter.adapt(ex, self.recipe, self.seed)
        if self.split == "test" and "fov_mask" in ex:  # scored inside and outside the FOV
            target = tf.concat([target, tf.cast(ex["fov_mask"], target.dtype)], axis=-1)
        id_hash = tf.strings.to_hash_bucket_fast(example_id(self.adapter, ex), 2**58)
        image, target = self.fixed(image, target)
        return image, target, index, id_hash

    def augmented(self, build):
        """The cached output of `build()` (the epoch-independent augmented set), built once."""
        if getattr(self, "_augmented", None) is None:
            self._augmented = build().cache()
        return self._augmented

    def examples(self, file_seed=None):
        """(image, target, index, id hash) per example; decoded and cached when small."""
        if not self.cache:
            return self.records(file_seed)
        if self._cached is None:  # one memory cache shared by every epoch of the run
            self._cached = self.records().map(self.prepare, num_parallel_calls=AUTOTUNE).cache()
        return self._cached


def _expand(ds, k):
    """Each element `k` times in a row, with its copy number ("slot") appended."""
    if k == 1:
        return ds.map(lambda *e: (*e, tf.constant(0, tf.int32)))
    slots = tf.data.Dataset.range(k).map(lambda s: tf.cast(s, tf.int32))
    return ds.flat_map(lambda *e: slots.map(lambda s: (*e, s)))


def make_dataset(
    recipe,
    builder,
    split,
    *,
    training,
    batch_size,
    seed=0,
    epoch=0,
    augmented=None,
    index=False,
    shard=None,
    reader=None,
    keep_ids=None,
):
    """The batched dataset of one epoch of `split`.

    training: shuffle, expand (`recipe.expansion`) and draw random augmentation for `epoch`.
    augmented: run the random augmentation without shuffling (validation of LXS/PXS, whose
      original augments its validation set); default: `training`.
    index: append each example's position in the split order (evaluation).
    reader: a `_Reader` from `reader_for` to share one decoded-split cache across epochs.
    keep_ids: image ids to keep (a label-efficiency subset of the training split).
    shard: (num, index) for per-worker input functions.
    """
    augmented = training if augmented is None else augmented
    reader = reader or reader_for(recipe, builder, split, training=training, seed=seed,
                                  keep_ids=keep_ids)  # fmt: skip
    key = epoch_key(seed, epoch)
    stage = _Stages(recipe, reader, augmented, training, augment.draw_key(recipe, seed, key))
    if training and reader.cache and recipe.augment_draw != "per-epoch":
        # Draws independent of the epoch (VFS's "fixed" expanded set): augment once, cache the
        # uint8 result (VFS: 208 images, 160 MB, ~60 s of augmentation saved per epoch), and only
        # shuffle per epoch.
        ds = reader.augmented(lambda: _expand(reader.examples(), recipe.expansion)
                              .map(stage.per_example, num_parallel_calls=AUTOTUNE))  # fmt: skip
        ds = ds.shuffle(recipe.shuffle_buffer, seed=key, reshuffle_each_iteration=False)
    else:
        ds = reader.examples(file_seed=key if training and not reader.cache else None)
        if shard is not None:
            ds = ds.shard(*shard)
        if training:
            ds = _expand(ds, recipe.expansion)
            ds = ds.shuffle(recipe.shuffle_buffer, seed=key, reshuffle_each_iteration=False)
        else:
            ds = ds.map(lambda *e: (*e, tf.constant(0, tf.int32)))
        ds = ds.enumerate().map(stage.full, num_parallel_calls=AUTOTUNE,
                                deterministic=True)  # fmt: skip
    ds = ds.batch(batch_size, drop_remainder=training and recipe.drop_last)
    # Normalisation per batch, not per example: the same values (element-wise ops), a batch op
    # that copies uint8 / single-channel images instead of float RGB, and each op dispatched once
    # per batch (benchmarks/RESULTS.md, "Input pipeline").
    ds = ds.map(stage.finish_batch(index), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.with_options(dataset_options()).prefetch(PREFETCH_BATCHES)


class _Stages:
    """The per-example maps of one epoch: prepare (uncached), random stage, finish."""

    def __init__(self, recipe, reader, augmented, training, draw_key):
        self.recipe, self.reader, self.draw_key = recipe, reader, draw_key
        self.random = augment.random_stage(recipe, augmented, training)
        self.finish = augment.finish(recipe)

    def per_example(self, *element, position=0):
        """(example..., slot) -> (image, target, index) after the random stage."""
        *example, slot = element
        reader = self.reader
        image, target, idx, id_hash = example if reader.cache else reader.prepare(*example)
        seed = augment.element_seed(self.recipe, self.draw_key, position, id_hash, slot)
        image, target = self.random(image, target, seed, slot)
        return image, target, idx

    def full(self, position, element):
        """(position, example) -> (image, target, index) before normalisation."""
        return self.per_example(*element, position=position)

    def finish_batch(self, index):
        """Batched (image, target, index) -> normalised (image, target[, index])."""

        def apply(image, target, idx):
            image, target = self.finish(image, target)
            return (image, target, idx) if index else (image, target)

        return apply


def reader_for(recipe, builder, split, *, training, seed=0, keep_ids=None):
    return _Reader(recipe, builder, split, training=training, seed=seed, keep_ids=keep_ids)


def split_ids(recipe, builder, split, keep_ids=None):
    """{index: image id} of `split` (the `index` of `make_dataset(index=True)`), read without
    decoding images, in the same order and with the same filters as the evaluation datasets."""
    import tensorflow_datasets as tfds

    reader = reader_for(recipe, builder, split, training=False, keep_ids=keep_ids)
    reader.cache, reader.late_keys = False, image_feature_keys(builder)
    ds = reader.records().map(
        lambda i, ex: (i, example_id(reader.adapter, ex)), num_parallel_calls=AUTOTUNE
    )
    return {int(i): v.decode() for i, v in tfds.as_numpy(ds.with_options(dataset_options()))}


def num_examples(builder, split):
    return builder.info.splits[split].num_examples


def steps_per_epoch(recipe, n_examples, global_batch):
    """Optimizer steps of one training epoch (the last partial batch counts unless drop_last)."""
    n = n_examples * recipe.expansion
    return n // global_batch if recipe.drop_last else -(-n // global_batch)
