"""Per-example stages of the input pipeline: resizing (deterministic, before the cache) and
augmentation + normalisation (random, after it), for every recipe.

Resizing follows the loader each task's original used:
  classification  torchvision Resize / RandomResizedCrop on PIL images (antialiased bilinear);
  LXS, PXS        cv2.resize INTER_NEAREST of image and mask to 224, *then* albumentations;
  VFS             SA-UNet's augmentation at the native 565 x 584, then cv2.resize INTER_LINEAR
                  to 512 (the label: linear, then > 127), as DriveDataset read the expanded set.
Random draws are stateless in an element seed of shape [2] (see `element_seed`).
"""

from __future__ import annotations

import tensorflow as tf

from tfmedbench.data import transforms
from tfmedbench.data.adapters import get_adapter

# "fixed" draws come from one key for every run: the original fine-tuned all its runs on one
# downloaded expanded set. Any constant works; this one is not an epoch key of a small seed.
FIXED_DRAW_KEY = 2**40 + 7


def draw_key(recipe, seed, epoch_key):
    """The stateless key augmentation parameters are drawn from."""
    if recipe.augment_draw == "per-epoch":
        return epoch_key
    if recipe.augment_draw == "per-run":
        return int(seed) * 1_000_003
    return FIXED_DRAW_KEY


def element_seed(recipe, key, position, id_hash, slot):
    """Seed [2] of one element: by position within the epoch (online draws), or by image and
    copy number (per-run / fixed draws: the same augmented copy every epoch, like a file)."""
    key = tf.cast(key, tf.int64)
    if recipe.augment_draw == "per-epoch":
        return tf.stack([key, tf.cast(position, tf.int64)])
    return tf.stack([key, id_hash * 16 + tf.cast(slot, tf.int64)])


def _resize_segmentation(recipe, image, mask):
    size = recipe.image_size
    if recipe.resize == "cv2-nearest":
        return transforms.resize_cv2_nearest(image, size), transforms.resize_cv2_nearest(mask, size)
    if recipe.resize == "cv2-linear":
        mask = tf.concat(
            [transforms.resize_mask_cv2_linear(mask[..., i : i + 1], size)
             for i in range(mask.shape[-1])], axis=-1,
        )  # fmt: skip
        return transforms.resize_cv2_linear(image, size), mask
    image = transforms.resize(transforms.to_float(image), size)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255), tf.uint8)
    return image, tf.cast(transforms.resize(mask, size, method="nearest"), tf.uint8)


def to_uint8_rgb(image):
    """uint8/uint16 grey or RGB -> uint8 RGB (16-bit sources: x / 257 rounded; our builders store
    8-bit sources times 257, so this is exact for them)."""
    if image.dtype == tf.uint16:
        image = tf.cast(tf.round(tf.cast(image, tf.float32) / 257.0), tf.uint8)
    image = tf.convert_to_tensor(image, tf.uint8)
    return tf.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def deterministic_stage(recipe, split, training):
    """Per-example work that does not depend on randomness (runs before the cache)."""
    size = recipe.image_size
    native = training and recipe.augmentation == "drive_saunet"

    def classification(image, target):
        if training and recipe.augmentation == "xray_cls":
            return image, target  # RandomResizedCrop works on the full image
        # Grey stays grey (every step below is per channel): `finish` expands it to RGB, so a
        # cached split holds one channel, and the resizes do a third of the work.
        image = transforms.to_float(image)
        if split == "test" and recipe.test_time == "tencrop":
            image = transforms.ten_crop(transforms.resize(image, recipe.resize_size), size)
        elif recipe.augmentation == "xray_cls":
            # Validation of the x-ray recipes: Resize(256) -> CenterCrop(224), as the original.
            image = transforms.center_crop(transforms.resize(image, recipe.resize_size), size)
        else:
            image = transforms.resize(image, size)
        return image, target

    def segmentation(image, mask):
        image, mask = to_uint8_rgb(image), tf.cast(mask > 0.5, tf.uint8)
        if native:  # SA-UNet augments the native image; the resize follows the augmentation
            return image, mask
        return _resize_segmentation(recipe, image, mask)

    return classification if recipe.kind == "classification" else segmentation


def _int64_seed(seed):
    return tf.random.stateless_uniform([], seed, minval=None, maxval=None, dtype=tf.int64)


def random_stage(recipe, augmented, training):
    """Per-example random augmentation and normalisation (runs after the cache)."""
    size = recipe.image_size
    adapter = get_adapter(recipe.builder)
    target_stage = getattr(adapter, "target_stage", None)

    def segmentation(image, mask, seed, slot):
        if augmented and recipe.augmentation == "xray_seg":
            from tfmedbench.data import seg_augment, seg_augment_tf

            backend = seg_augment_tf if recipe.seg_augment == "tf" else seg_augment
            image, mask = backend.xray_seg_train(image, mask, size, _int64_seed(seed))
        elif training and recipe.augmentation == "drive_saunet":
            from tfmedbench.data import drive_augment

            image, mask = drive_augment.augment(image, mask, slot, seed)
            image, mask = _resize_segmentation(recipe, image, mask)
        return image, mask

    def apply(image, target, seed, slot):
        """-> (image, target) before normalisation (segmentation: still uint8, compact to cache)."""
        if target_stage is not None:
            target = target_stage(target, recipe, tf.random.experimental.stateless_split(seed, 1)[0])
        if recipe.kind == "classification":
            if augmented and recipe.augmentation == "xray_cls":
                # Crops before float; grey stays grey until `finish`.
                image = transforms.xray_cls_train(image, size, seed, rgb=False)
            return image, target
        return segmentation(image, target, seed, slot)

    return apply


def finish(recipe):
    """Last step: float RGB in [0, 1], normalised; float32 targets. Element-wise, so the
    pipeline applies it to whole batches ([B, ...] or one example alike)."""

    def apply(image, target):
        # = normalize(to_float_rgb(image)), bit-identical and 3.4x faster (normalize_rgb).
        image = transforms.normalize_rgb(image, recipe.normalization)
        return image, tf.cast(target, tf.float32)

    return apply
