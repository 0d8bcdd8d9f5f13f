"""The paper's DRIVE (VFS) training augmentation, as stateless graph-mode TF ops.

The paper: "random rotation, Gaussian noise, color jittering, and horizontal, vertical and
diagonal flips". Its code trained on SA-UNet's offline-expanded DRIVE (13 images per original,
made by keras_dataAug.py and flip.py); here `augment(image, mask, slot, seed)` produces image
`slot` of that expansion on the fly, at the native resolution (the 512 px resize comes after):

    slot 0        the original
    slots 1-3     randomRotation: angle randint(1, 360) deg, PIL rotate BICUBIC, label NEAREST
    slots 4-6     randomColor: ImageEnhance Color k/10 (k in 0..30) -> Brightness (10..20)
                  -> Contrast (10..20) -> Sharpness (0..30)
    slots 7-9     randomGaussian: every value += gauss(0.2, 0.3), stored back into uint8
    slots 10-12   cv2.flip codes 1 (left-right), 0 (up-down), -1 (both)

Only rotation and the flips touch the mask. Stateless and deterministic: the parameters come
from `draw_params(slot, seed)` (TF's Philox, with the slot folded into the key so that the
three slots of an op draw independently, as the three calls of the script did); they have the
scripts' distributions, not their streams (the same integer seed does not redraw the files the
original wrote -- those were unseeded anyway).

Given the same parameters the outputs are bit-identical to Pillow 12.3 and to the script's own
loop (drive_augment_test.py). Measured on the 20 DRIVE training images, in tf.function graphs:
340 rotations (each image at 1, 90, 180, 270, 359 and 12 random angles): 0 of 336,559,200 image
values and 0 of 112,186,400 label values differ; 160 randomColor chains (random factors plus
all-minimum and all-maximum): 0 of 158,380,800; the literal noise loop on 3 full images: 0 of
2,969,640. The tests add all 360 angles on small images (square, odd, 1x1), every factor of each
enhancer and Image.blend on all 65,536 pixel pairs x 31 factors. The conventions, read in
Pillow's C sources and each confirmed against Pillow's output:
  - blend: float32 in1 + alpha * (in2 - in1), truncated; clipped to [0, 255] when alpha is
    outside [0, 1]. convert("L") is (19595 R + 38470 G + 7471 B + 2**15) >> 16; Contrast's grey
    is int(mean + 0.5); SMOOTH is (1 1 1; 1 5 1; 1 1 1) / 13 in float32, summed in Filter.c's
    order, + 0.5 and truncated, with the outermost rows and columns copied.
  - rotation: pixel centres at (x + .5, y + .5) about (W/2, H/2), PIL's matrix entries rounded to
    15 decimals; a sample outside [0, W) x [0, H) is black, inside it takes 4x4 edge-clamped taps
    of the a = -1 cubic (Geometry.c; not resize's a = -0.5), rows first, clipped and truncated.
    The label uses Geometry.c's 16.16 fixed-point nearest path. 0, 180 and, on square images,
    90 / 270 are PIL's exact transposes.
  - noise: numpy adds in float64 and its C cast truncates toward zero and keeps the low 8 bits,
    so 0 + (-1, 0) stays 0 but 0 - 1.x wraps to 255 and 255 + 1.x to 0 (P = 3e-5 and 0.004).
    The test runs the script's function as written (one numpy-2 fix: np.array for np.asarray).

Cost, a one-off measurement per 565x584 image in tf.data with one thread, on a shared 2-core
machine under load (load average 4-6, so roughly halve it): rotation ~0.3 s, colour ~0.35 s
(of which SMOOTH's emulated float32 sums ~0.14 s), noise ~0.2 s, identity and flips < 0.1 s;
Pillow took 67 ms to rotate image and label and 40 ms for randomColor there. That is the price
of reproducing the C arithmetic op by op; the map parallelises across examples.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

# --------------------------------------------------------------------------------------------
# Layout of the expanded training set

# The original expanded DRIVE offline with two SA-UNet scripts (github.com/clguo/SA-UNet,
# commit 8448081): keras_dataAug.py runs randomRotation, randomColor and randomGaussian 3 times
# each per image (9 new images), flip.py adds cv2.flip codes 1, 0 and -1 (3 more); with the
# original that is 13 images per original -- SA-UNet issue #15: "260 (20 images ...)".
EXPANSION = 13
SLOT_IDENTITY = 0
SLOTS_ROTATION = (1, 2, 3)  # randomRotation
SLOTS_COLOR = (4, 5, 6)  # randomColor
SLOTS_NOISE = (7, 8, 9)  # randomGaussian
SLOT_HFLIP = 10  # cv2.flip(image, 1): left-right
SLOT_VFLIP = 11  # cv2.flip(image, 0): up-down
SLOT_HVFLIP = 12  # cv2.flip(image, -1): both
# slot -> branch of augment's switch_case
_SLOT_OP = (0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 6)

# np.random.randint(low, high) ranges (high exclusive) of keras_dataAug.py
ANGLE_RANGE = (1, 360)  # degrees, counter-clockwise
COLOR_TENTHS = (0, 31)  # ImageEnhance.Color factor = k / 10 in {0.0, ..., 3.0}
BRIGHTNESS_TENTHS = (10, 21)  # {1.0, ..., 2.0}
CONTRAST_TENTHS = (10, 21)  # {1.0, ..., 2.0}
SHARPNESS_TENTHS = (0, 31)  # {0.0, ..., 3.0}
NOISE_MEAN = 0.2  # random.gauss(0.2, 0.3) per pixel and channel
NOISE_SIGMA = 0.3
_RANGES = (ANGLE_RANGE, COLOR_TENTHS, BRIGHTNESS_TENTHS, CONTRAST_TENTHS, SHARPNESS_TENTHS)
_NAMES = ("angle", "color", "brightness", "contrast", "sharpness")

# Grappler's arithmetic optimizer rewrites float expressions inside tf.function and tf.data
# graphs: it merges chains of Add into AddN (reordered by operand shape), hoists common factors
# (a*k + b*k -> (a+b)*k) and reorders broadcasts. Measured on a synthetic float32 sum
# `(0.5 + ((a*k + b*k) + c*k)) + ...` of 200,000 values: 57,582 differed from the eager
# result. So that PIL's rounding survives, no float Add below takes another Add's output (nor
# an Add of two products): a sum is written as an IEEE-identical difference (x + y = x - (-y)
# with -y computed directly: a negated constant, y0 - ys for -(ys - y0), ...) or is separated
# from the next one by a cast.


# --------------------------------------------------------------------------------------------
# Randomness


def draw_params(slot, seed):
    """The random parameters of one slot: a dict of int32 scalars plus a noise key.

    `angle` (1..359), `color`, `brightness`, `contrast`, `sharpness` (factors in tenths, ranges
    above) and `noise_key` (a [2] stateless key for the Gaussian field). All are drawn for
    every slot so the structure is fixed; the slot's op uses its own. The slot is folded into
    the key: the three rotation (colour, noise) slots of one seed get independent draws, as
    the three calls of keras_dataAug.py did.
    """
    seed = tf.convert_to_tensor(seed)
    slot = tf.cast(tf.convert_to_tensor(slot), seed.dtype)
    key = tf.random.experimental.stateless_fold_in(seed, slot)
    keys = tf.random.experimental.stateless_split(key, num=2)
    u = tf.random.stateless_uniform([len(_RANGES)], keys[0], dtype=tf.float64)
    low = tf.constant([r[0] for r in _RANGES], tf.float64)
    count = tf.constant([r[1] - r[0] for r in _RANGES], tf.float64)
    # floor(u * n) of a 52-bit uniform: every value of the range, bias < n / 2**52
    k = tf.minimum(tf.floor(u * count), count - 1.0) + low
    k = tf.cast(k, tf.int32)
    params = {name: k[i] for i, name in enumerate(_NAMES)}
    params["noise_key"] = keys[1]
    return params


def noise_field(noise_key, shape):
    """The additive float64 field of randomGaussian: random.gauss(mu, sigma) = mu + z * sigma."""
    z = tf.random.stateless_normal(shape, noise_key, dtype=tf.float64)
    # mu - (-sigma) * z == mu + z * sigma exactly; the Sub keeps grappler from merging it with
    # the later `image + noise` (see above).
    return tf.constant(NOISE_MEAN, tf.float64) - tf.constant(-NOISE_SIGMA, tf.float64) * z


# --------------------------------------------------------------------------------------------
# randomGaussian


def gaussian_noise(image, noise):
    """`im[i] += noise` on a uint8 array, element by element, as keras_dataAug.py does.

    numpy computes uint8 + Python float in float64 and stores the result back into uint8 with
    a C cast: truncation toward zero, then the low 8 bits (x86). So interior values move by
    floor(noise) (-1 with p=0.25, +1 with p=0.004), 0 + (-1, 0) stays 0 (truncation toward
    zero), 0 - 1.x wraps to 255 and 255 + 1.x wraps to 0.
    """
    total = tf.cast(image, tf.float64) + noise
    return tf.cast(tf.math.floormod(tf.cast(total, tf.int32), 256), tf.uint8)


# --------------------------------------------------------------------------------------------
# randomColor: PIL.ImageEnhance Color -> Brightness -> Contrast -> Sharpness


def factor(tenths):
    """PIL's float32 blend factor of randint(...) / 10 (Image.blend casts the double to float)."""
    return tf.cast(tf.cast(tenths, tf.float64) / 10.0, tf.float32)


def blend(degenerate, image, tenths):
    """Image.blend(degenerate, image, k / 10) of Pillow's Blend.c.

    out = in1 + alpha * (in2 - in1) in float32, then truncated; outside [0, 1] the result is
    clipped to [0, 255] first (inside it cannot leave the range). alpha 0 / 1 copy an input,
    which the formula reproduces exactly.
    """
    in1 = tf.cast(degenerate, tf.int32)
    diff = tf.cast(tf.cast(image, tf.int32) - in1, tf.float32)
    out = tf.cast(in1, tf.float32) + factor(tenths) * diff
    return tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.uint8)


def luma(image):
    """convert("L") of RGB uint8, int32 [H, W]: (19595 R + 38470 G + 7471 B + 2**15) >> 16."""
    rgb = tf.cast(image, tf.int32)
    weighted = rgb * tf.constant([19595, 38470, 7471], tf.int32)
    return tf.bitwise.right_shift(tf.reduce_sum(weighted, axis=-1) + 0x8000, 16)


def enhance_color(image, tenths):
    """ImageEnhance.Color: blend with convert("L").convert("RGB")."""
    grey = tf.cast(tf.repeat(luma(image)[..., None], 3, axis=-1), tf.uint8)
    return blend(grey, image, tenths)


def enhance_brightness(image, tenths):
    """ImageEnhance.Brightness: blend with black."""
    return blend(tf.zeros_like(image), image, tenths)


def enhance_contrast(image, tenths):
    """ImageEnhance.Contrast: blend with the grey int(mean(L) + 0.5).

    ImageStat's mean is sum(i * hist[i]) / count in doubles, exact here (integers < 2**53).
    """
    lum = tf.cast(luma(image), tf.int64)
    mean = tf.cast(tf.reduce_sum(lum), tf.float64) / tf.cast(tf.size(lum, tf.int64), tf.float64)
    grey = tf.cast(tf.floor(mean + 0.5), tf.uint8)
    return blend(tf.fill(tf.shape(image), grey), image, tenths)


def _product_table(weight):
    # float32(v) * (float32(w) / float32(13)) for v in 0..255, held in float64: the products of
    # Filter.c's KERNEL1x3, looked up (a gather cannot be refactored by grappler).
    k = np.float32(weight) / np.float32(13)
    return tf.constant((np.arange(256, dtype=np.float32) * k).astype(np.float64))


def _add_f32(a, b):
    # float32 a + b, computed in float64 and rounded: with 53 >= 2 * 24 + 2 bits the double
    # rounding is innocuous (bit-identical to a float32 add), and the casts separate the adds.
    return tf.cast(tf.cast(tf.cast(a, tf.float64) + b, tf.float32), tf.float64)


def _smooth_interior(image):
    # Filter.c ImagingFilter3x3 for 3-band images: ss = 0.5; ss += row y+1 (kernel[0:3]);
    # ss += row y (kernel[3:6]); ss += row y-1 (kernel[6:9]); each row summed left to right.
    ones, five = _product_table(1), _product_table(5)
    v = tf.cast(image, tf.int32)
    ss = tf.constant(0.5, tf.float64)
    for rows, centre in ((v[2:], ones), (v[1:-1], five), (v[:-2], ones)):
        left = tf.gather(ones, rows[:, :-2])
        mid = tf.gather(centre, rows[:, 1:-1])
        right = tf.gather(ones, rows[:, 2:])
        ss = _add_f32(ss, _add_f32(_add_f32(left, mid), right))
    return tf.cast(tf.clip_by_value(ss, 0.0, 255.0), tf.uint8)  # clip8: clamp, truncate


def smooth(image):
    """image.filter(ImageFilter.SMOOTH): 3x3 (1 1 1; 1 5 1; 1 1 1) / 13, rounded half up.

    The outermost rows and columns are copied unchanged; images under 3x3 are copied.
    """
    shape = tf.shape(image)

    def filtered():
        interior = tf.pad(_smooth_interior(image), [[1, 1], [1, 1], [0, 0]])
        inner = tf.ones([shape[0] - 2, shape[1] - 2, 1], tf.bool)
        inside = tf.pad(inner, [[1, 1], [1, 1], [0, 0]])
        return tf.where(inside, interior, image)

    return tf.cond(tf.reduce_min(shape[:2]) >= 3, filtered, lambda: image)


def enhance_sharpness(image, tenths):
    """ImageEnhance.Sharpness: blend with the SMOOTH-filtered image."""
    return blend(smooth(image), image, tenths)


def random_color(image, color, brightness, contrast, sharpness):
    """randomColor of keras_dataAug.py for given factors (in tenths), applied in its order."""
    image = enhance_color(image, color)
    image = enhance_brightness(image, brightness)
    image = enhance_contrast(image, contrast)
    return enhance_sharpness(image, sharpness)


# --------------------------------------------------------------------------------------------
# randomRotation: PIL Image.rotate(angle, BICUBIC) for the image, NEAREST for the label


def _pil_rotation_table():
    """Per integer angle: Image.rotate's matrix entries (Python doubles, as PIL computes them),
    the negations and halves the sums below need, and Geometry.c's 16.16 FIX() of each."""
    columns = {}
    for angle in range(360):
        t = -math.radians(angle % 360.0)
        a, b = round(math.cos(t), 15), round(math.sin(t), 15)
        d, e = round(-math.sin(t), 15), round(math.cos(t), 15)
        row = {"a": a, "b": b, "d": d, "e": e, "na": -a, "nb": -b, "nd": -d, "ne": -e}
        row.update({"nha": -a * 0.5, "hb": b * 0.5, "nhd": -d * 0.5, "he": e * 0.5})
        row.update({"f" + k: math.floor(v * 65536.0 + 0.5) for k, v in zip("abde", (a, b, d, e))})
        for k, v in row.items():
            columns.setdefault(k, []).append(v)
    return list(columns), np.array(list(columns.values()), np.float64).T


_ROTATION_NAMES, _ROTATION = _pil_rotation_table()


def rotation_matrix(angle, height, width):
    """Image.rotate's inverse affine matrix (a, b, c, d, e, f) for the default centre (w/2, h/2).

    Output pixel centre (x + .5, y + .5) samples the input at (a x' + b y' + c, d x' + e y' + f).
    c = (a * -cx + b * -cy) + cx is written cx - (b * cy - na * cx): the same IEEE value.
    """
    row = tf.gather(tf.constant(_ROTATION), angle)
    m = {name: row[i] for i, name in enumerate(_ROTATION_NAMES)}
    cx = tf.cast(width, tf.float64) / 2.0
    cy = tf.cast(height, tf.float64) / 2.0
    c = cx - (m["b"] * cy - m["na"] * cx)
    f = cy - (m["e"] * cy - m["nd"] * cx)
    return m, c, f


def _source_coords(m, c, f, height, width):
    # affine_transform() of Geometry.c: xin = a * (x + .5) + b * (y + .5) + c, left to right.
    xo = tf.cast(tf.range(width), tf.float64)[None, :] + 0.5
    yo = tf.cast(tf.range(height), tf.float64)[:, None] + 0.5
    xin = (m["a"] * xo - m["nb"] * yo) + c
    yin = (m["d"] * xo - m["ne"] * yo) + f
    return xin, yin


def _cubic(u1, u2, u3, u4, d, neg_d):
    # Geometry.c BICUBIC (a = -1 cubic convolution, not resize's a = -0.5) on the row results:
    # p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4,
    # v = p1 + d * (p2 + d * (p3 + d * p4)), rounded in that order. The rows are sums
    # themselves, so every sum that takes one is written as the IEEE-identical difference.
    p2 = u3 - u1
    p3 = (u3 - 2.0 * (u2 - u1)) - u4
    p4 = u4 - (u3 - (u2 - u1))
    return u2 - neg_d * (p2 + d * (p3 + d * p4))


def _cubic_int(u1, u2, u3, u4, d):
    # first pass on uint8 taps: C promotes them to int, so p1..p4 are exact integers
    p2 = u3 - u1
    p3 = 2 * (u1 - u2) + u3 - u4
    p4 = -u1 + u2 - u3 + u4
    f64 = lambda t: tf.cast(t, tf.float64)  # noqa: E731
    return f64(u2) + d * (f64(p2) + d * (f64(p3) + d * f64(p4)))


def rotate_bicubic(image, angle):
    """Image.rotate(angle, Image.BICUBIC) of a uint8 [H, W, C] image, no expand, black fill.

    Geometry.c bicubic_filter32RGB: a sample outside [0, W) x [0, H) is 0; else 4x4 taps at
    floor(x - .5) - 1 .. + 2, clamped to the edge, rows interpolated first, the result clipped to
    [0, 255] and truncated. Callers take the 180 / 90 / 270 fast paths (see rotate()).
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    m, c, f = rotation_matrix(angle, height, width)
    xin, yin = _source_coords(m, c, f, height, width)
    valid = (xin >= 0.0) & (xin < tf.cast(width, tf.float64))
    valid &= (yin >= 0.0) & (yin < tf.cast(height, tf.float64))
    xs, ys = xin - 0.5, yin - 0.5
    x0, y0 = tf.floor(xs), tf.floor(ys)
    dx, dy, neg_dy = (xs - x0)[..., None], (ys - y0)[..., None], (y0 - ys)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    flat = tf.reshape(image, [height * width, shape[2]])
    cols = [tf.clip_by_value(x0 + i, 0, width - 1) for i in (-1, 0, 1, 2)]
    rows = []
    for j in (-1, 0, 1, 2):
        # PIL reuses the previous row's value past the bottom/top, the same as clamping here
        base = tf.clip_by_value(y0 + j, 0, height - 1) * width
        taps = [tf.cast(tf.gather(flat, base + col), tf.int32) for col in cols]
        rows.append(_cubic_int(*taps, dx))
    out = _cubic(*rows, dy, neg_dy)
    out = tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.uint8)
    return tf.where(valid[..., None], out, tf.zeros_like(out))


def rotate_nearest(mask, angle):
    """Image.rotate(angle, Image.NEAREST) of a uint8 [H, W, C] label: Geometry.c affine_fixed.

    16.16 fixed point: xx = FIX(c + a/2 + b/2) + y FIX(b) + x FIX(a), source column xx >> 16
    (likewise rows); sources outside the image give 0. Pillow uses this path while the four
    corners map inside +-32768 px, i.e. for any image up to 16384 px a side (asserted).
    """
    limit = tf.debugging.assert_less_equal(
        tf.reduce_max(tf.shape(mask)[:2]), 16384,
        message="drive_augment.rotate_nearest: image side over 16384 px (PIL's fixed-point limit)",
    )
    with tf.control_dependencies([limit]):
        shape = tf.shape(mask)
    height, width = shape[0], shape[1]
    m, c, f = rotation_matrix(angle, height, width)
    # FIX(a[2] + a[0] * 0.5 + a[1] * 0.5), left to right; c + ha written c - nha (see above)
    fix = lambda v: tf.cast(tf.floor(v * 65536.0 + 0.5), tf.int64)  # noqa: E731
    x_start = fix((c - m["nha"]) + m["hb"])
    y_start = fix((f - m["nhd"]) + m["he"])
    fa, fb, fd, fe = (tf.cast(m[n], tf.int64) for n in ("fa", "fb", "fd", "fe"))
    x = tf.range(tf.cast(width, tf.int64))[None, :]
    y = tf.range(tf.cast(height, tf.int64))[:, None]
    xi = tf.bitwise.right_shift(x_start + y * fb + x * fa, 16)
    yi = tf.bitwise.right_shift(y_start + y * fe + x * fd, 16)
    h64, w64 = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    valid = (xi >= 0) & (xi < w64) & (yi >= 0) & (yi < h64)
    index = tf.clip_by_value(yi, 0, h64 - 1) * w64 + tf.clip_by_value(xi, 0, w64 - 1)
    out = tf.gather(tf.reshape(mask, [height * width, shape[2]]), index)
    return tf.where(valid[..., None], out, tf.zeros_like(out))


def _transpose(t):
    return tf.transpose(t, [1, 0, 2])


def rotate(image, mask, angle):
    """randomRotation for a given angle (int32, degrees counter-clockwise, 0..359).

    Image.rotate's fast paths first: 0 is a copy, 180 a transpose, 90 / 270 too when the image
    is square (exact, no resampling); every other angle resamples.
    """
    angle = tf.convert_to_tensor(angle, tf.int32)
    shape = tf.shape(image)
    square = tf.equal(shape[0], shape[1])
    path = tf.where(tf.equal(angle, 0), 1, 0)
    path = tf.where(tf.equal(angle, 180), 2, path)
    path = tf.where(square & tf.equal(angle, 90), 3, path)
    path = tf.where(square & tf.equal(angle, 270), 4, path)
    return tf.switch_case(path, [
        lambda: (rotate_bicubic(image, angle), rotate_nearest(mask, angle)),
        lambda: (image, mask),
        lambda: (image[::-1, ::-1], mask[::-1, ::-1]),
        lambda: (_transpose(image)[::-1], _transpose(mask)[::-1]),  # ROTATE_90 (np.rot90)
        lambda: (_transpose(image)[:, ::-1], _transpose(mask)[:, ::-1]),  # ROTATE_270
    ])


# --------------------------------------------------------------------------------------------
# The augmentation


def _check(image, mask):
    image = tf.convert_to_tensor(image)
    mask = tf.convert_to_tensor(mask)
    for name, t, channels in (("image", image, 3), ("mask", mask, 1)):
        if t.dtype != tf.uint8:
            raise ValueError(f"drive_augment.augment: {name} must be uint8, got {t.dtype.name}")
        if t.shape.rank is not None and (t.shape.rank != 3 or t.shape[-1] not in (None, channels)):
            raise ValueError(
                f"drive_augment.augment: {name} must be [H, W, {channels}], got {t.shape}"
            )
    return image, mask


def augment(image, mask, slot, seed):
    """One image of the 13-fold expanded set: (image uint8 [H, W, 3], mask uint8 [H, W, 1]).

    slot (int32 scalar in [0, 13)): 0 the original, 1-3 rotation, 4-6 colour, 7-9 Gaussian
    noise, 10 / 11 / 12 horizontal / vertical / both flips. seed: int32/int64 [2] stateless key.
    Masks change only under rotation (nearest) and the flips.
    """
    image, mask = _check(image, mask)
    slot = tf.convert_to_tensor(slot, tf.int32)
    with tf.control_dependencies([
        tf.debugging.assert_less(slot, EXPANSION, message="drive_augment.augment: slot >= 13"),
        tf.debugging.assert_non_negative(slot, message="drive_augment.augment: slot < 0"),
    ]):
        op = tf.gather(tf.constant(_SLOT_OP, tf.int32), slot)
    p = draw_params(slot, seed)
    colour = lambda: random_color(  # noqa: E731
        image, p["color"], p["brightness"], p["contrast"], p["sharpness"]
    )
    noise = lambda: gaussian_noise(  # noqa: E731
        image, noise_field(p["noise_key"], tf.shape(image))
    )
    out_image, out_mask = tf.switch_case(op, [
        lambda: (image, mask),
        lambda: rotate(image, mask, p["angle"]),
        lambda: (colour(), mask),
        lambda: (noise(), mask),
        lambda: (image[:, ::-1], mask[:, ::-1]),
        lambda: (image[::-1], mask[::-1]),
        lambda: (image[::-1, ::-1], mask[::-1, ::-1]),
    ])
    out_image.set_shape(image.shape)
    out_mask.set_shape(mask.shape)
    return out_image, out_mask
