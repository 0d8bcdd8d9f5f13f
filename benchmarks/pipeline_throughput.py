"""Input-pipeline throughput (images/s): tfmedbench's tf.data pipeline vs a PyTorch DataLoader.

  python benchmarks/pipeline_throughput.py cls   [--n 48] [--size 1024] [--workers 2]
  python benchmarks/pipeline_throughput.py seg   [--n 64] [--workers 2]
  python benchmarks/pipeline_throughput.py both
  python benchmarks/pipeline_throughput.py cls-configs [--n 96] [--workers 1] [--configs default,512]
  python benchmarks/pipeline_throughput.py cls-stages [--n 96]
  python benchmarks/pipeline_throughput.py vfs   [--workers 2]

cls: N generated chest-X-ray-like SIZE x SIZE 8-bit grey PNGs in the NIH Shenzhen layout are
  built with the real TFDS builder (not timed), then `tfmedbench.data.pipeline.make_dataset`
  (TXC recipe, train split, uncached (`cache=none`) as for ChestX-ray14/CheXpert, whose decoded
  images do not fit in memory: read TFRecords -> shuffle encoded records -> one map: decode PNG,
  RandomResizedCrop(224), flip, RandomRotation(7), normalise -> batch 16 -> prefetch). Also
  "previous shape": the pipeline before the fused map (decode while reading, separate maps,
  shuffle buffer of decoded images). PyTorch: a Dataset over the same PNG files, PIL decode +
  the same transforms in PIL/numpy (torchvision's RandomResizedCrop.get_params, bilinear resize,
  flip, nearest rotation), DataLoader with `--workers` processes, batch 16.
seg: the LXS/PXS training augmentation on N cached 224 x 224 uint8 (image, mask) pairs (what
  the pipeline's cache holds for those tasks) + normalise, batch 16, prefetch: tfmedbench's
  default TF-native augmentation (`tfmedbench.data.seg_augment_tf`), the albumentations Compose
  through tf.numpy_function (`seg_augment=albumentations`), and a rejected per-thread Compose
  without the lock, vs a DataLoader applying the albumentations Compose with `--workers`
  processes.

cls-configs: one tree of N generated 1024 px radiographs built as each builder config of
  `--configs` (default = full-resolution PNG; 512 / 256 = the reduced JPEG configs,
  datasets_tfds.resized), the TXC training pipeline from each, and a DataLoader over the full
  PNG files and over the 512 config's JPEG bytes written as files (a PyTorch user's pre-shrunk
  copy). Besides the rates, "img per CPU-s" = images / CPU seconds of this process and its
  DataLoader workers during the epoch: the per-core rate, which a busy shared machine
  distorts less than wall-clock rates.
  The 512 config also runs "before": the same pipeline decoding every JPEG whole and resizing
  with tf.image.resize only (`before_crop_decode`).
cls-stages: CPU ms per image of each stage of the TXC training augmentation on the 512
  config's train images, one tf.data thread, alternating: JPEG decode (whole / only the crop
  box), the antialiased resize of the crop (tf.image.resize / `resize_banded`), flip, rotation,
  and the whole augmentation before and now. Each stage is a map over the same elements;
  "nothing" (the iteration alone) is subtracted.
vfs: the VFS training pipeline (DRIVE, SA-UNet's 13x expansion at native resolution, cached
  fixed set, resize to 512, batch 16) on the real DRIVE set when `--drive-dir` holds it (else
  generated fundus images): the time to build the cached augmented set once, then epochs from
  the cache (fit's one iterator), vs a DataLoader over the same cached uint8 arrays doing the
  per-epoch work (shuffle, normalise, batch).

Rates: "steady" = images between the first and the last batch / that time (what an epoch of
10^4-10^5 images sees); "whole-epoch" = from iterator creation to its teardown, so per-epoch
fixed costs (start-up, pipeline fill, function instantiation) count; "fixed s/epoch" = the
whole-epoch time beyond the images at the steady rate.
tf.data's parallelism: AUTOTUNE, capped to `--workers` threads via
`Options.threading.private_threadpool_size` so both sides use the same number of workers.
Sides alternate in one process over `--repeats` epochs; medians of images/s after one untimed
warm-up epoch; ratios are paired (within a repetition, then the median).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.common import environment, fmt, median, table

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
BATCH = 16


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("case", choices=("cls", "seg", "both", "cls-configs", "cls-stages", "vfs"))
    p.add_argument("--n", type=int, default=None, help="images (cls: 96, seg: 96)")
    p.add_argument("--size", type=int, default=1024, help="cls source image size")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cache", default="none", help="cls recipe cache: none | auto | memory")
    p.add_argument("--configs", default="default,512",
                   help="cls-configs: builder configs to compare (first: the baseline)")
    p.add_argument("--drive-dir", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "..", "shared", "data"), help="vfs: folder holding DRIVE/")
    return p.parse_args()


def cpu_seconds():
    """CPU seconds (user + system) used so far by this process and its live child processes
    (the DataLoader workers), from /proc; this process only elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    if not os.path.isdir("/proc/self/task"):
        return time.process_time()
    me, total = os.getpid(), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == me or int(fields[1]) == me:  # fields[1]: the parent pid
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def limit_threads(ds, workers):
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = workers
    return ds.with_options(options)


def one_iterator(ds, batches_per_epoch, epochs=5):
    """fit's way for splits of known length: one iterator over the repeated dataset for all
    epochs. Timed as `epochs` epochs from iterator creation to teardown (its start-up amortised
    over them, as over a run's epochs in fit), so nothing prefetches in the background while the
    other sides are timed."""
    return lambda: iterate(itertools.islice(iter(ds.repeat()), epochs * batches_per_epoch))


def iterate(batches):
    """One epoch over a tf.data dataset or a DataLoader: (images, [time of each batch], CPU
    seconds of the process (and its workers) at the first and at the last batch)."""
    n, stamps, cpu = 0, [], []
    for images, _ in batches:
        n += int(images.shape[0])
        stamps.append(time.perf_counter())
        if len(stamps) == 1:
            cpu.append(cpu_seconds())
    cpu.append(cpu_seconds())
    return n, stamps, cpu


# ---------------------------------------------------------------- classification


def rrc_params(rng, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision RandomResizedCrop.get_params."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class TorchClsDataset:
    """The original code's train transform (torchvision), in PIL: RandomResizedCrop(224),
    RandomHorizontalFlip, RandomRotation(7), ToTensor, Normalize; image read with PIL .convert
    ('RGB') as the original ChestX-ray14 loader does."""

    def __init__(self, files, size=224):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import torch
        from PIL import Image

        rng = random.Random(i * 7919 + int(torch.initial_seed() % 100003))
        img = Image.open(self.files[i]).convert("RGB")
        y, x, h, w = rrc_params(rng, img.height, img.width)
        img = img.resize((self.size, self.size), Image.BILINEAR, box=(x, y, x + w, y + h))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = img.rotate(rng.uniform(-7, 7), resample=Image.NEAREST)
        arr = (np.asarray(img, np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(arr.transpose(2, 0, 1).copy()), torch.zeros(1)


def random_and_finish(recipe):
    """(image, target, int64 random scalar) -> the pipeline's random stage, then normalisation."""
    import tensorflow as tf

    from tfmedbench.data import augment

    random_stage = augment.random_stage(recipe, True, True)
    finish = augment.finish(recipe)
    return lambda image, target, r: finish(*random_stage(image, target, tf.stack([r, r + 1]), 0))


def previous_pipeline(recipe, builder, batch_size, seed=0):
    """make_dataset's shape before the fused map (uncached splits): TFDS decodes every image
    while reading, adapt and the deterministic stage run as separate parallel maps, the shuffle
    buffer holds decoded radiographs, then the random stage -- same elements, same order."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from tfmedbench.data import augment as augment_lib
    from tfmedbench.data.adapters import get_adapter

    adapter = get_adapter(recipe.builder)
    ds = builder.as_dataset(split="train", shuffle_files=True,
                            read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))
    ds = ds.map(lambda ex: adapter.adapt(ex, recipe, seed), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(augment_lib.deterministic_stage(recipe, "train", True),
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.shuffle(recipe.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    augment = random_and_finish(recipe)
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)))
    ds = ds.map(lambda pair, r: augment(pair[0], pair[1], r), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def cls_case(args):
    import torch

    import datasets_tfds  # noqa: F401
    from tfmedbench.data import pipeline, prepare
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.tasks import get_recipe

    n = args.n or 96
    tmp = tempfile.mkdtemp(prefix="tfmedbench-pipe-")
    try:
        t0 = time.time()
        # odd_files=False: all 8-bit grey PNGs, so the torch reader below decodes them as is.
        folder = write_shenzhen_tree(os.path.join(tmp, "raw"), n_images=n, size=args.size,
                                     odd_files=False)  # fmt: skip
        builder = prepare.build(
            "tfmedbench_nih_shenzhen", os.path.join(tmp, "raw"), os.path.join(tmp, "tfds"),
            verbose=False,
        )
        print(f"# generated + built {n} {args.size}px PNGs in {time.time() - t0:.0f}s",
              file=sys.stderr)
        recipe = get_recipe("TXC", batch_size=BATCH, cache=args.cache, shuffle_buffer=64)
        n_train = pipeline.num_examples(builder, "train")
        ds = pipeline.make_dataset(recipe, builder, "train", training=True, batch_size=BATCH)
        ds = limit_threads(ds, args.workers)
        prev = limit_threads(previous_pipeline(recipe, builder, BATCH), args.workers)
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder))[:n_train]
        loader = torch.utils.data.DataLoader(
            TorchClsDataset(files), batch_size=BATCH, shuffle=True, drop_last=True,
            num_workers=args.workers, persistent_workers=args.workers > 0, prefetch_factor=2,
        )
        sides = {"tfmedbench tf.data": lambda: iterate(ds),
                 "tfmedbench, fit's one iterator": one_iterator(ds, n_train // BATCH),
                 "tf, previous shape (decode before shuffle)": lambda: iterate(prev),
                 "torch DataLoader": lambda: iterate(loader)}
        title = (f"TXC train, {n_train} images {args.size}px PNG, "
                 f"cache={pipeline.should_cache(recipe, builder, 'train')}")
        return run_sides(sides, args.repeats), title
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def before_crop_decode():
    """Datasets made inside decode every JPEG whole and resize with tf.image.resize only (the
    pipeline before `crop_decodable_keys` and `resize_banded`): the same images within 1e-6."""
    from tfmedbench.data import pipeline, transforms

    keys, side = pipeline.crop_decodable_keys, transforms.BANDED_RESIZE_MAX_SIDE
    pipeline.crop_decodable_keys, transforms.BANDED_RESIZE_MAX_SIDE = (lambda *a: []), 0
    try:
        yield
    finally:
        pipeline.crop_decodable_keys, transforms.BANDED_RESIZE_MAX_SIDE = keys, side


def write_encoded_split(builder, split, folder):
    """The split's stored image bytes written as files (PNG or JPEG, as the config stores them)."""
    import tensorflow_datasets as tfds

    os.makedirs(folder, exist_ok=True)
    ext = builder.info.features["image"].encoding_format
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    files = []
    for ex in tfds.as_numpy(ds):
        files.append(os.path.join(folder, f"{ex['image_id'].decode()}.{ext}"))
        with open(files[-1], "wb") as f:
            f.write(ex["image"])
    return sorted(files)


def cls_configs_case(args):
    """The TXC pipeline from each builder config of one tree (see the module docstring)."""
    import torch

    import datasets_tfds  # noqa: F401
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.data import pipeline, prepare
    from tfmedbench.tasks import get_recipe

    n, configs = args.n or 96, args.configs.split(",")
    tmp = tempfile.mkdtemp(prefix="tfmedbench-pipe-")
    try:
        raw = os.path.join(tmp, "raw")
        write_shenzhen_tree(raw, n_images=n, size=args.size, odd_files=False)
        recipe = get_recipe("TXC", batch_size=BATCH, cache=args.cache, shuffle_buffer=64)
        sides, n_train = {}, None
        for config in configs:
            name = "tfmedbench_nih_shenzhen" + ("" if config == "default" else f"/{config}")
            builder = prepare.build(name, raw, os.path.join(tmp, "tfds"), verbose=False)
            n_train = pipeline.num_examples(builder, "train")
            ds = limit_threads(pipeline.make_dataset(recipe, builder, "train", training=True,
                                                     batch_size=BATCH), args.workers)  # fmt: skip
            sides[f"tf.data, {config} config"] = lambda ds=ds: iterate(ds)
            sides[f"tf.data, {config} config, fit's one iterator"] = one_iterator(
                ds, n_train // BATCH)
            if config != "default":  # the same pipeline before the crop decode + matmul resize
                with before_crop_decode():
                    prev = limit_threads(pipeline.make_dataset(
                        recipe, builder, "train", training=True, batch_size=BATCH), args.workers)
                sides[f"tf.data, {config} config, fit's one iterator, before"] = one_iterator(
                    prev, n_train // BATCH)
            files = write_encoded_split(builder, "train", os.path.join(tmp, "files", config))
            loader = torch.utils.data.DataLoader(
                TorchClsDataset(files), batch_size=BATCH, shuffle=True, drop_last=True,
                num_workers=args.workers, persistent_workers=args.workers > 0, prefetch_factor=2,
            )  # fmt: skip
            sides[f"torch DataLoader, {config} files"] = lambda loader=loader: iterate(loader)
        print(f"# built {n} {args.size}px radiographs as {', '.join(configs)}", file=sys.stderr)
        title = (f"TXC train from builder configs {', '.join(configs)}: {n_train} images, "
                 f"{args.size}px sources, cache={args.cache}")
        return run_sides(sides, args.repeats), title, f"torch DataLoader, {configs[0]} files"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def stage_maps():
    """{stage: fn(jpeg bytes, seed [2]) -> tensor} for cls-stages."""
    import tensorflow as tf

    from tfmedbench.data import transforms as T

    def decode(b):
        return tf.io.decode_jpeg(b, channels=1, dct_method="INTEGER_ACCURATE")

    def box(b, s):
        shape = tf.image.extract_jpeg_shape(b)
        return T.random_resized_crop_box(T.split_seed(s, 3)[0], shape[0], shape[1])

    def crop(b, s):
        return tf.image.decode_and_crop_jpeg(b, tf.stack(box(b, s)), channels=1,
                                             dct_method="INTEGER_ACCURATE")  # fmt: skip

    def before(b, s):
        with before_crop_decode():
            return T.xray_cls_train(decode(b), 224, s, rgb=False)

    resized = tf.zeros([224, 224, 1])
    return {
        "nothing": lambda b, s: tf.strings.length(b),
        "decode whole": lambda b, s: decode(b),
        "crop box + decode only the box": crop,
        "crop box + decode whole + crop": lambda b, s: tf.image.crop_to_bounding_box(
            decode(b), *box(b, s)),
        "... + tf.image.resize (antialiased)": lambda b, s: T.resize(T.to_float(crop(b, s)), 224),
        "... + resize_banded": lambda b, s: T.resize_banded(crop(b, s), 224),
        "flip (224 px)": lambda b, s: T.random_hflip(resized + tf.cast(s[0], tf.float32), s),
        "rotation (224 px)": lambda b, s: T.random_rotation(
            resized + tf.cast(s[0], tf.float32), 7.0, s),
        "augmentation before": before,
        "augmentation now (xray_cls_train on the bytes)": lambda b, s: T.xray_cls_train(
            b, 224, s, rgb=False),
    }


def cls_stages_case(args):
    """CPU ms per image of each augmentation stage (see the module docstring)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    import datasets_tfds  # noqa: F401
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.data import prepare

    tmp = tempfile.mkdtemp(prefix="tfmedbench-stages-")
    try:
        write_shenzhen_tree(os.path.join(tmp, "raw"), n_images=args.n or 96, size=args.size,
                            odd_files=False)  # fmt: skip
        builder = prepare.build("tfmedbench_nih_shenzhen/512", os.path.join(tmp, "raw"),
                                os.path.join(tmp, "tfds"), verbose=False)  # fmt: skip
        ds = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
        blobs = [ex["image"] for ex in ds]
        base = tf.data.Dataset.from_tensor_slices(blobs).cache()
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        options.autotune.enabled = False
        reps = max(1, 2000 // len(blobs))
        stages = {name: base.repeat(reps).enumerate().map(
            lambda i, b, fn=fn: fn(b, tf.stack([i, i + 7])), num_parallel_calls=1
        ).with_options(options) for name, fn in stage_maps().items()}  # fmt: skip
        times = {name: [] for name in stages}
        for rep in range(args.repeats + 1):
            for name, stage in stages.items():
                c0 = time.process_time()
                for _ in stage:
                    pass
                if rep:  # the first pass traces and warms up
                    times[name].append((time.process_time() - c0) / (reps * len(blobs)) * 1e3)
        floor = median(times["nothing"])
        rows = []
        for name, t in times.items():
            minus = 0.0 if name == "nothing" else floor
            rows.append([name, fmt(median(t) - minus, 3), fmt(min(t) - minus, 3)])
        print(f"\nTXC augmentation stages on {len(blobs)} train images of the 512 config "
              f"({args.size} px sources), one tf.data thread, {args.repeats} repetitions x "
              f"{reps * len(blobs)} images; 'nothing' subtracted from the others")
        print(table(["stage", "CPU ms/img (median)", "min"], rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- segmentation


class ThreadLocalSegAugment:
    """A rejected alternative to tfmedbench's locked Compose: one Compose per thread, no lock
    (measured ~2x slower: GIL contention between tf.data's threads)."""

    def __init__(self, size):
        self.size = size
        self.local = threading.local()

    def __call__(self, image, mask, seed):
        from tfmedbench.data.seg_augment import build_compose

        compose = getattr(self.local, "compose", None)
        if compose is None:
            compose = self.local.compose = build_compose(self.size)
        seed = int(seed) % (2**31)
        compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = compose(image=image, mask=mask)
        return out["image"].astype(np.uint8), out["mask"].astype(np.uint8)


class TorchSegDataset:
    def __init__(self, images, masks, size=224):
        self.images, self.masks, self.size = images, masks, size
        self.compose = None

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        import torch

        from tfmedbench.data.seg_augment import build_compose

        if self.compose is None:
            self.compose = build_compose(self.size)
        seed = i * 7919 + int(torch.initial_seed() % 100003)
        self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = self.compose(image=self.images[i], mask=self.masks[i])
        img = (out["image"].astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(img.transpose(2, 0, 1).copy()), torch.from_numpy(
            out["mask"].astype(np.float32).transpose(2, 0, 1).copy())


def seg_case(args):
    import tensorflow as tf
    import torch

    from tfmedbench.data import pipeline
    from datasets_tfds.nih_shenzhen.fake_data import chest_xray
    from tfmedbench.tasks import get_recipe

    n = args.n or 96
    size = 224
    rng = np.random.default_rng(0)
    images = np.stack([np.repeat(chest_xray(rng, size, i % 2)[..., None], 3, -1) for i in range(n)])
    yy, xx = np.mgrid[0:size, 0:size]
    lung = ((((xx / size - 0.3) / 0.17) ** 2 + ((yy / size - 0.5) / 0.33) ** 2) < 1) | \
        ((((xx / size - 0.7) / 0.17) ** 2 + ((yy / size - 0.5) / 0.33) ** 2) < 1)
    masks = np.repeat(lung[None, :, :, None].astype(np.uint8), n, 0)
    recipe = get_recipe("LXS", batch_size=BATCH)

    def tf_dataset(stage):
        ds = tf.data.Dataset.from_tensor_slices((images, masks)).cache()
        ds = ds.shuffle(n, seed=0, reshuffle_each_iteration=True)
        randoms = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms)).map(
            lambda pair, r: stage(pair[0], pair[1], r), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
        # make_dataset's tail: fit's options (autotune off) and prefetch.
        ds = ds.batch(BATCH, drop_remainder=True).with_options(pipeline.dataset_options())
        return limit_threads(ds.prefetch(pipeline.PREFETCH_BATCHES), args.workers)

    current = tf_dataset(random_and_finish(recipe))  # default: TF-native
    albu = tf_dataset(random_and_finish(recipe.override(seg_augment="albumentations")))

    def locked_stage(image, mask, seed_value):
        aug = ThreadLocalSegAugment(size)
        image, mask = tf.numpy_function(aug, [image, mask, seed_value], [tf.uint8, tf.uint8])
        image.set_shape([size, size, 3])
        mask.set_shape([size, size, 1])
        from tfmedbench.data import transforms

        return transforms.normalize(transforms.to_float_rgb(image)), tf.cast(mask, tf.float32)

    locked = tf_dataset(locked_stage)
    loader = torch.utils.data.DataLoader(
        TorchSegDataset(images, masks), batch_size=BATCH, shuffle=True, drop_last=True,
        num_workers=args.workers, persistent_workers=args.workers > 0, prefetch_factor=2,
    )
    sides = {"tfmedbench tf.data (TF-native augmentation)": lambda: iterate(current),
             "tfmedbench, fit's one iterator": one_iterator(current, n // BATCH),
             "tf.data, albumentations (locked Compose)": lambda: iterate(albu),
             "tf, per-thread Compose (rejected)": lambda: iterate(locked),
             "torch DataLoader": lambda: iterate(loader)}
    return run_sides(sides, args.repeats), f"LXS/PXS train augmentation, {n} cached 224px pairs"


class TorchVfsDataset:
    """The original's DriveDataset on SA-UNet's expanded set: read an image and its label file
    (cv2), cv2.resize both to 512 (INTER_LINEAR; label > 127), ImageNet-normalise."""

    def __init__(self, pairs, size=512):
        self.pairs, self.size = pairs, size

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        import cv2
        import torch

        image = cv2.cvtColor(cv2.imread(self.pairs[i][0]), cv2.COLOR_BGR2RGB)
        label = cv2.imread(self.pairs[i][1], cv2.IMREAD_GRAYSCALE)
        image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (self.size, self.size), interpolation=cv2.INTER_LINEAR) > 127
        image = (image.astype(np.float32) / 255.0 - MEAN) / STD
        return (torch.from_numpy(image.transpose(2, 0, 1).copy()),
                torch.from_numpy(label[None].astype(np.float32)))  # fmt: skip


def write_expanded_drive(builder, folder):
    """SA-UNet's offline expanded set of the train split (13 images per original, made by
    tfmedbench's bit-exact copy of its augmentation) as PNG image and label files."""
    import cv2
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from tfmedbench.data import drive_augment

    augment = tf.function(drive_augment.augment)
    os.makedirs(folder, exist_ok=True)
    pairs = []
    for i, ex in enumerate(tfds.as_numpy(builder.as_dataset(split="train"))):
        for slot in range(drive_augment.EXPANSION):
            image, mask = augment(ex["image"], ex["vessel_mask"], slot, tf.constant([i, slot]))
            pairs.append((os.path.join(folder, f"{i}_{slot}.png"),
                          os.path.join(folder, f"{i}_{slot}_label.png")))  # fmt: skip
            cv2.imwrite(pairs[-1][0], cv2.cvtColor(image.numpy(), cv2.COLOR_RGB2BGR))
            cv2.imwrite(pairs[-1][1], mask.numpy()[..., 0] * 255)
    return pairs


def vfs_case(args):
    """The VFS training pipeline as fit runs it (see the module docstring)."""
    import torch

    from tfmedbench.data import pipeline, prepare
    from tfmedbench.tasks import get_recipe

    tmp = tempfile.mkdtemp(prefix="tfmedbench-vfs-")
    try:
        manual, source = args.drive_dir, "real DRIVE"
        if not os.path.isdir(os.path.join(manual, "DRIVE")):
            from datasets_tfds.drive.fake_data import write_tree

            manual, source = os.path.join(tmp, "raw"), "generated fundus images"
            write_tree(manual, n_train=20, n_test=2)
        builder = prepare.build("tfmedbench_drive", manual, os.path.join(tmp, "tfds"),
                                verbose=False)  # fmt: skip
        recipe = get_recipe("VFS")
        reader = pipeline.reader_for(recipe, builder, "train", training=True)
        epochs = itertools.count()

        def epoch_dataset():
            ds = pipeline.make_dataset(recipe, builder, "train", training=True, reader=reader,
                                       batch_size=recipe.batch_size, epoch=next(epochs))  # fmt: skip
            return limit_threads(ds, args.workers)

        start = time.perf_counter()
        n_images, *_ = iterate(epoch_dataset())  # builds the cached expanded set
        print(f"# VFS: {n_images} expanded images augmented and cached once in "
              f"{time.perf_counter() - start:.1f} s ({source})", file=sys.stderr)
        pairs = write_expanded_drive(builder, os.path.join(tmp, "expanded"))
        loader = torch.utils.data.DataLoader(
            TorchVfsDataset(pairs), batch_size=recipe.batch_size, shuffle=True,
            num_workers=args.workers, persistent_workers=args.workers > 0, prefetch_factor=2,
        )  # fmt: skip
        steps = -(-n_images // recipe.batch_size)
        sides = {"tfmedbench, fit's one iterator (cached set)": one_iterator(epoch_dataset(), steps),
                 "tfmedbench, iterator per epoch": lambda: iterate(epoch_dataset()),
                 "torch DataLoader": lambda: iterate(loader)}  # fmt: skip
        title = f"VFS train ({source}, 13x expansion, 512 px, batch {recipe.batch_size})"
        return run_sides(sides, args.repeats), title
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_sides(sides, repeats):
    """Per side and repetition: (images, whole-epoch seconds from iterator creation to teardown,
    steady rate from first to last batch: what an epoch of 10^4-10^5 images sees)."""
    runs = {k: [] for k in sides}
    for fn in sides.values():
        fn()  # warm-up epoch (tracing, worker start-up, caches)
    for rep in range(repeats):
        for name, fn in sides.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            count, stamps, (cpu_first, cpu_last) = fn()
            seconds = time.perf_counter() - t0  # the iterator is freed on return
            cpu = cpu_seconds() - c0
            per_batch = count / len(stamps)
            steady = (len(stamps) - 1) * per_batch / (stamps[-1] - stamps[0])
            # CPU per image between the first and the last batch (start-up and teardown out):
            # the cost per image of a long epoch.
            steady_cpu = (len(stamps) - 1) * per_batch / max(cpu_last - cpu_first, 1e-9)
            runs[name].append((count, seconds, steady, cpu, steady_cpu))
        print(f"# rep {rep + 1}: " + ", ".join(
            f"{k} {c / t:.1f} (steady {r:.1f}, {c / cpu:.0f}/CPU-s, steady {sc:.0f}/CPU-s)"
            for k, (c, t, r, cpu, sc) in
            ((k, v[-1]) for k, v in runs.items())), f"load {os.getloadavg()[0]:.2f}",
            file=sys.stderr)
    return runs


def report(title, runs, workers, base_name="torch DataLoader"):
    base = runs[base_name]
    rows = []
    for name, r in runs.items():
        steady = [x[2] for x in r]
        whole = [x[0] / x[1] for x in r]
        steady_ratio = median([a[2] / b[2] for a, b in zip(r, base)])
        whole_ratio = median([(a[0] / a[1]) / (b[0] / b[1]) for a, b in zip(r, base)])
        # Per-epoch fixed cost (start-up, pipeline fill, teardown): the epoch's time beyond its
        # images at the steady rate.
        fixed = median([x[1] - x[0] / x[2] for x in r])
        per_cpu = [x[0] / x[3] for x in r if x[3] > 0]
        rows.append([name, fmt(median(steady), 1), fmt(min(steady), 1), fmt(max(steady), 1),
                     fmt(steady_ratio), fmt(median(whole), 1), fmt(whole_ratio), fmt(fixed, 2),
                     fmt(median(per_cpu), 0), fmt(median([x[4] for x in r]), 0)])  # fmt: skip
    print(f"\n{title} ({r[0][0]} images per epoch); {workers} workers/threads each")
    print(table(["pipeline", "steady img/s (median)", "min", "max", f"x {base_name} (paired)",
                 "whole-epoch img/s", "x (paired)", "fixed s/epoch", "img per CPU-s",
                 "steady img per CPU-s"], rows))


def main():
    args = parse()
    import torch

    torch.set_num_threads(1)  # DataLoader workers are processes; keep the main one light
    print(environment())
    if args.case in ("cls", "both"):
        rates, title = cls_case(args)
        report(title, rates, args.workers)
    if args.case in ("seg", "both"):
        rates, title = seg_case(args)
        report(title, rates, args.workers)
    if args.case == "cls-configs":
        rates, title, base = cls_configs_case(args)
        report(title, rates, args.workers, base)
    if args.case == "cls-stages":
        cls_stages_case(args)
    if args.case == "vfs":
        rates, title = vfs_case(args)
        report(title, rates, args.workers)


if __name__ == "__main__":
    main()
