"""TF-native image transforms with torchvision semantics, seeded per example.

Every random op is stateless and takes a `seed` tensor of shape [2], so a pipeline run twice with
the same seed yields the same batches regardless of parallelism.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfmedbench.models.resnet import IMAGENET_MEAN, IMAGENET_STD


def to_float(image):
    """uint8/uint16/float -> float32 in [0, 1], channels kept."""
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) / 255.0
    if image.dtype == tf.uint16:
        return tf.cast(image, tf.float32) / 65535.0
    return tf.cast(image, tf.float32)


def to_float_rgb(image):
    """uint8/uint16/float [H, W, C] -> float32 [H, W, 3] in [0, 1] (grey repeated to RGB)."""
    image = to_float(image)
    if image.shape[-1] == 1:
        image = tf.repeat(image, 3, axis=-1)
    return image


def normalize(image, mode="imagenet"):
    if mode == "imagenet":
        return (image - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)
    if mode == "none":
        return image
    raise ValueError(f"unknown normalization {mode!r}")


def normalize_rgb(image, mode="imagenet"):
    """`normalize(to_float_rgb(image), mode)` of [..., H, W, C] (C 1 or 3), bit-identical, faster.

    Each output channel is computed from its plane with scalar operands, then the planes are
    interleaved by one transpose: the same float32 subtraction and division per value as
    broadcasting [H, W, 3] against [3], without Eigen's broadcast over an inner dimension of 3,
    which is not vectorised. A grey image is never expanded first. Measured on a 224 px grey
    image in a one-thread tf.data map: 0.43 ms instead of 1.44 ms (repeat + normalize) of CPU
    (shared 2-core machine; benchmarks/RESULTS.md).
    """
    image = to_float(image)
    if mode == "none":
        return tf.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    if mode != "imagenet":
        raise ValueError(f"unknown normalization {mode!r}")
    rank = image.shape.rank
    if image.shape[-1] == 1:
        planes = [image[..., 0]] * 3
    else:
        planes = tf.unstack(tf.transpose(image, [rank - 1, *range(rank - 1)]), num=3)
    out = tf.stack(
        [(plane - IMAGENET_MEAN[c]) / IMAGENET_STD[c] for c, plane in enumerate(planes)], axis=0
    )
    return tf.transpose(out, [*range(1, rank), 0])


def resize(image, size, method="bilinear"):
    """Resize to a square `size` (torchvision `Resize((s, s))`), antialiased when shrinking."""
    return tf.image.resize(image, (size, size), method=method, antialias=method != "nearest")


# Grey crops up to this side are resized by `resize_banded`; larger ones (the full-resolution
# configs' crops, mostly) by tf.image.resize, as before. Its dense blocks grow with the crop
# while ScaleAndTranslate's work does not, measured to 224 px (CPU ms, one thread, crops of
# side x 0.9 side): 512: 1.22 vs 2.09; 800: 3.07 vs 3.33; 1100: 5.35 vs 4.11; 2000: 21.9 vs 8.1.
BANDED_RESIZE_MAX_SIDE = 640
BANDED_RESIZE_BLOCKS = 4  # measured: 2 blocks 1.15 ms, 4 blocks 1.03, 8 blocks 1.22 per crop


def _aa_samples(n_in, size, reverse=None):
    """Input positions (+ 0.5) sampled by each output, and the triangle's half-width, of
    tf.image.resize's antialiased bilinear (ScaleAndTranslate's "triangle" spans)."""
    scale = tf.cast(size, tf.float32) / tf.cast(n_in, tf.float32)
    inv_scale = tf.cast(1.0 / tf.cast(scale, tf.float64), tf.float32)  # as the kernel: in double
    sample = (tf.range(size, dtype=tf.float32) + 0.5) * inv_scale
    if reverse is not None:
        sample = tf.cond(reverse, lambda: tf.reverse(sample, [0]), lambda: sample)
    return sample, tf.maximum(inv_scale, 1.0)


def _aa_band(sample, half, n_in):
    """Dense triangle weights [outputs, band] of `sample`'s outputs over the input band
    [lo, hi) they reach (unnormalised; zero outside the triangle)."""
    first, last = tf.minimum(sample[0], sample[-1]), tf.maximum(sample[0], sample[-1])
    lo = tf.maximum(tf.cast(tf.floor(first - half - 0.5), tf.int32), 0)
    hi = tf.minimum(tf.cast(tf.math.ceil(last + half - 0.5), tf.int32) + 1, n_in)
    pos = (tf.cast(tf.range(lo, hi), tf.float32) + 0.5)[None, :] - sample[:, None]
    return lo, hi, tf.nn.relu(1.0 - tf.abs(pos) * (1.0 / half))


def resize_banded(image, size, flip=None):
    """`resize(to_float(image), size)` of a grey uint8/uint16 [H, W, 1] image (then mirrored
    left-right where `flip`), as matrix products with ScaleAndTranslate's weights.

    tf.image.resize's antialiased kernel does ~4 ns of scalar work per weight (1.2 ms for a
    224 px image on this CPU, most of a 512-config example). Here each pass is split into
    `BANDED_RESIZE_BLOCKS` blocks of outputs, each one matrix product over the input band its
    triangles reach, and the rows are normalised once on the output: the same weights, summed
    in another order, so within 1e-6 of tf.image.resize on the [0, 1] scale (tested), in about
    half its time for crops below `BANDED_RESIZE_MAX_SIDE` (benchmarks/RESULTS.md, section 5).
    A flip reverses the output positions, not the image.
    """
    shape = tf.shape(image)
    x = tf.cast(image[..., 0], tf.float32)
    bounds = [round(i * size / BANDED_RESIZE_BLOCKS) for i in range(BANDED_RESIZE_BLOCKS + 1)]
    blocks = list(zip(bounds, bounds[1:]))
    sample, half = _aa_samples(shape[0], size)
    parts, sums = [], []
    for o0, o1 in blocks:
        lo, hi, w = _aa_band(sample[o0:o1], half, shape[0])
        parts.append(tf.matmul(w, x[lo:hi]))
        sums.append(tf.reduce_sum(w, 1))
    rows, sum_y = tf.concat(parts, 0), tf.concat(sums, 0)  # [size, W]
    sample, half = _aa_samples(shape[1], size, reverse=flip)
    parts, sums = [], []
    for o0, o1 in blocks:
        lo, hi, w = _aa_band(sample[o0:o1], half, shape[1])
        parts.append(tf.matmul(rows[:, lo:hi], w, transpose_b=True))
        sums.append(tf.reduce_sum(w, 1))
    out, sum_x = tf.concat(parts, 1), tf.concat(sums, 0)  # [size, size]
    peak = 65535.0 if image.dtype == tf.uint16 else 255.0
    return (out * ((1.0 / (sum_y * peak))[:, None] * (1.0 / sum_x)[None, :]))[..., None]


def resize_cv2_nearest(image, size):
    """cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST), exactly.

    cv2 picks source pixel min(floor(x * (src / dst)), src - 1) -- no half-pixel offset, unlike
    tf.image.resize's nearest -- with the scale computed as 1 / (dst / src) in double precision.
    """

    def indices(src):
        inv_scale = 1.0 / (tf.cast(size, tf.float64) / tf.cast(src, tf.float64))
        x = tf.floor(tf.range(size, dtype=tf.float64) * inv_scale)
        return tf.minimum(tf.cast(x, tf.int32), src - 1)

    shape = tf.shape(image)
    rows = tf.gather(image, indices(shape[0]), axis=0)
    return tf.gather(rows, indices(shape[1]), axis=1)


def resize_cv2_linear(image_u8, size):
    """cv2.resize(image, (size, size)) (INTER_LINEAR) of a uint8 image, as uint8.

    Same geometry as cv2 (half-pixel centres, border clamping, no antialiasing when shrinking);
    cv2 interpolates uint8 in 11-bit fixed point, this in float32 then rounds, so results agree
    to within 1 grey level.
    """
    resized = tf.image.resize(tf.cast(image_u8, tf.float32), (size, size), method="bilinear",
                              antialias=False)  # fmt: skip
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def resize_mask_cv2_linear(mask01, size):
    """The original DRIVE label resize: cv2 INTER_LINEAR of the 0/255 label, then > 127."""
    resized = resize_cv2_linear(tf.cast(mask01, tf.uint8) * 255, size)
    return tf.cast(resized > 127, tf.uint8)


def split_seed(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def random_resized_crop_box(seed, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision RandomResizedCrop.get_params: 10 tries, then a clamped centre crop."""
    tries = 10
    s_area, s_ratio, s_y, s_x = split_seed(seed, 4)
    h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = h_f * w_f
    target_area = area * tf.random.stateless_uniform([tries], s_area, scale[0], scale[1])
    log_ratio = tf.random.stateless_uniform(
        [tries], s_ratio, math.log(ratio[0]), math.log(ratio[1])
    )
    aspect = tf.exp(log_ratio)
    w = tf.cast(tf.round(tf.sqrt(target_area * aspect)), tf.int32)
    h = tf.cast(tf.round(tf.sqrt(target_area / aspect)), tf.int32)
    ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    # Fallback (torchvision): centre crop with the ratio clamped to the range.
    in_ratio = w_f / h_f
    fw = tf.where(
        in_ratio < ratio[0], w_f, tf.where(in_ratio > ratio[1], tf.round(h_f * ratio[1]), w_f)
    )
    fh = tf.where(
        in_ratio < ratio[0], tf.round(w_f / ratio[0]), tf.where(in_ratio > ratio[1], h_f, h_f)
    )
    first = tf.argmax(tf.cast(ok, tf.int32))
    any_ok = tf.reduce_any(ok)
    ch = tf.where(any_ok, h[first], tf.cast(fh, tf.int32))
    cw = tf.where(any_ok, w[first], tf.cast(fw, tf.int32))
    u_y = tf.random.stateless_uniform([], s_y)
    u_x = tf.random.stateless_uniform([], s_x)
    y0 = tf.where(
        any_ok,
        tf.cast(tf.floor(u_y * tf.cast(height - ch + 1, tf.float32)), tf.int32),
        (height - ch) // 2,
    )
    x0 = tf.where(
        any_ok,
        tf.cast(tf.floor(u_x * tf.cast(width - cw + 1, tf.float32)), tf.int32),
        (width - cw) // 2,
    )
    return y0, x0, ch, cw


def random_resized_crop(image, size, seed):
    shape = tf.shape(image)
    y0, x0, ch, cw = random_resized_crop_box(seed, shape[0], shape[1])
    crop = tf.image.crop_to_bounding_box(image, y0, x0, ch, cw)
    return resize(crop, size)


def hflip_draw(seed):
    """Whether `random_hflip` mirrors for this seed."""
    return tf.random.stateless_uniform([], seed) < 0.5


def mirror_if(flip, image):
    return tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)


def random_hflip(image, seed, mask=None):
    flip = hflip_draw(seed)
    image = mirror_if(flip, image)
    return image if mask is None else (image, mirror_if(flip, mask))


def rotate(image, degrees, interpolation="NEAREST"):
    """Rotate about the centre by `degrees` (counter-clockwise, as torchvision), fill 0."""
    h = tf.cast(tf.shape(image)[0], tf.float32)
    w = tf.cast(tf.shape(image)[1], tf.float32)
    theta = degrees * math.pi / 180.0
    c, s = tf.cos(theta), tf.sin(theta)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # Output pixel (x, y) samples input at R^-1 (x - c) + c; counter-clockwise on screen
    # (y axis down) means the inverse map uses +s on x from y.
    a0, a1 = c, -s
    b0, b1 = s, c
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy
    transform = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )
    return out[0]


def random_rotation(image, max_degrees, seed):
    angle = tf.random.stateless_uniform([], seed, -max_degrees, max_degrees)
    return rotate(image, angle)


def center_crop(image, size):
    shape = tf.shape(image)
    return tf.image.crop_to_bounding_box(
        image, (shape[0] - size) // 2, (shape[1] - size) // 2, size, size
    )


def ten_crop(image, size):
    """torchvision TenCrop: 4 corners + centre of the image and of its mirror -> [10, s, s, C]."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]

    def five(img):
        return [
            img[:size, :size],
            img[:size, w - size :],
            img[h - size :, :size],
            img[h - size :, w - size :],
            center_crop(img, size),
        ]

    return tf.stack(five(image) + five(tf.reverse(image, [1])))


def xray_cls_train(image, size, seed, rgb=True):
    """The original classification augmentation: RandomResizedCrop, flip, RandomRotation(7).

    `image`: any dtype `to_float_rgb` takes, grey or RGB, or the bytes of a grey JPEG, which
    is then decoded only inside the crop box (`pipeline.crop_decodable_keys`). Crop first, then convert only the crop
    to float, and expand grey to RGB last: every step is per channel, so the result is
    bit-identical to `to_float_rgb` first, at a fraction of the work on large radiographs
    (benchmarks/pipeline_throughput.py cls). `rgb=False` leaves a grey image grey (the input
    pipeline's `normalize_rgb` expands it).
    """
    s_crop, s_flip, s_rot = split_seed(seed, 3)
    if image.dtype == tf.string:
        shape = tf.image.extract_jpeg_shape(image)
        y0, x0, ch, cw = random_resized_crop_box(s_crop, shape[0], shape[1])
        crop = tf.image.decode_and_crop_jpeg(image, tf.stack([y0, x0, ch, cw]), channels=1,
                                             dct_method="INTEGER_ACCURATE")  # fmt: skip
    else:
        shape = tf.shape(image)
        y0, x0, ch, cw = random_resized_crop_box(s_crop, shape[0], shape[1])
        crop = tf.image.crop_to_bounding_box(image, y0, x0, ch, cw)
    grey = crop.shape[-1] == 1
    flip = hflip_draw(s_flip)

    def resized():
        return mirror_if(flip, resize(to_float(crop), size))

    if grey and crop.dtype in (tf.uint8, tf.uint16):
        image = tf.cond(tf.maximum(ch, cw) <= BANDED_RESIZE_MAX_SIDE,
                        lambda: resize_banded(crop, size, flip), resized)  # fmt: skip
    else:
        image = resized()
    image = random_rotation(image, 7.0, s_rot)
    return tf.repeat(image, 3, axis=-1) if grey and rgb else image
