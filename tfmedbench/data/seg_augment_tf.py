"""The segmentation training augmentation of `seg_augment.py`, in TensorFlow ops.

`seg_augment.build_compose` runs albumentations 2.0.8 (OpenCV 5.0) through `tf.numpy_function`
under a lock; that holds the GIL and serialises the tf.data threads. This module does the same
augmentation with graph-mode TF ops and stateless RNG only, so it runs inside
`tf.data.Dataset.map(..., num_parallel_calls=AUTOTUNE)` in parallel, and the same seed gives the
same output whatever the thread scheduling. The Compose it mirrors (all other arguments default):

    OneOf([RandomBrightnessContrast(), RandomGamma()], p=0.3)
    OneOf([ElasticTransform(alpha=120, sigma=6), GridDistortion(),
           OpticalDistortion(distort_limit=2)], p=0.3)
    RandomSizedCrop(min_max_height=(round(S*156/224), S), size=(S, S), p=0.25)

Each transform is a function of explicit parameters plus a sampler of those parameters. Given the
same parameters the outputs equal albumentations' (tests/test_seg_augment_tf.py):
  - brightness/contrast and gamma: the same uint8 lookup tables (float32 resp. float64 arithmetic,
    truncating cast), bit-identical;
  - remap: OpenCV 5's float bilinear remap (horizontal then vertical lerp with FMA, round half to
    even), border constant 0, bit-identical; masks nearest (round half to even), identical;
  - grid / optical maps: bit-identical (numpy's float64 linspace steps; OpenCV's
    initUndistortRectifyMap with the new camera matrix's principal point at ((W-1)/2, (H-1)/2));
  - random sized crop: OpenCV's fixed-point INTER_LINEAR resize (11-bit weights, its SIMD rounding,
    unclamped vertical weights at the top edge) bit-identical; masks INTER_NEAREST identical.

Where it deliberately differs from the albumentations pipeline (measured):
  - Random streams: TF's stateless Philox, not numpy/Python's generators, so the same integer
    seed gives a different (equally distributed) sample.
  - Independence of the random decisions: every decision and parameter has its own stream, the
    distributions of albumentations' classes. (`seg_augment.SegAugment` first reseeded with
    `compose.set_random_seed(seed)`, which starts every transform from the same first draw and
    correlates the decisions -- 69% of examples untouched instead of 37%; found while writing this
    module and fixed there: it now shares one generator pair across the Compose.)
  - Elastic: the Gaussian smoothing of the displacement noise is a float32 matrix product here,
    OpenCV's separable filter there. The maps differ by <= 1.5e-5 px (a few float32 ulps), which
    moves ~4e-5 of the image values by 1 level (max 1); masks were identical in 25 fields (64 and
    224 px). Everything else is bit-identical given the same parameters.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# The Compose's constants (albumentations 2.0.8 defaults where not given in seg_augment.py).
PIXEL_P = 0.3  # OneOf([RandomBrightnessContrast(), RandomGamma()], p=0.3)
PIXEL_WEIGHTS = (0.5, 0.5)  # OneOf weights are the children's p (default 0.5 each), normalised
BRIGHTNESS_LIMIT = (-0.2, 0.2)
CONTRAST_LIMIT = (-0.2, 0.2)
GAMMA_LIMIT = (80.0, 120.0)
DISTORT_P = 0.3
DISTORT_WEIGHTS = (0.5, 0.5, 0.5)  # Elastic, Grid, Optical: default p=0.5 each
ELASTIC_ALPHA = 120.0
ELASTIC_SIGMA = 120.0 * 0.05
GRID_NUM_STEPS = 5
GRID_DISTORT_LIMIT = (-0.3, 0.3)
OPTICAL_DISTORT_LIMIT = (-2.0, 2.0)  # distort_limit=2 is symmetric
CROP_P = 0.25

# Every scalar random quantity of an example is one element of a single float64 uniform draw
# (one Philox call per example instead of one op per decision: op overhead dominated otherwise).
# Elements are independent, so every decision has its own stream. Layout:
_U = {
    "pixel_gate": 0,
    "pixel_choice": 1,
    "contrast": 2,
    "brightness": 3,
    "gamma": 4,
    "distort_gate": 5,
    "distort_choice": 6,
    "optical": 7,
    "crop_gate": 8,
    "crop_height": 9,
    "crop_y": 10,
    "crop_x": 11,
    "grid": 12,  # 2 * (GRID_NUM_STEPS + 1) values
}
_NUM_UNIFORMS = 12 + 2 * (GRID_NUM_STEPS + 1)
_SALT = 0x5E6A  # second word of the root key; keeps these streams apart from other users of seed


# --------------------------------------------------------------------------------------------
# Randomness


def example_keys(seed):
    """Two stateless keys ([2] int64) from the example seed: scalars' draw, elastic noise.

    Stateless ops only: the output depends on the seed alone, never on tf.data's thread order.
    """
    key = tf.stack([tf.cast(seed, tf.int64), tf.constant(_SALT, tf.int64)])
    keys = tf.random.experimental.stateless_split(key, num=2)
    return keys[0], keys[1]


def draw_uniforms(key):
    """The example's [_NUM_UNIFORMS] float64 uniforms in [0, 1) (layout: _U)."""
    return tf.random.stateless_uniform([_NUM_UNIFORMS], key, dtype=tf.float64)


def _uniform(u, low, high):
    # Python's random.uniform(a, b) = a + (b - a) * random(); float64 as Python floats are.
    return low + (high - low) * u


def one_of(u_gate, u_choice, p, weights):
    """OneOf's decision from two uniforms: (applied, index).

    albumentations: applied = random() < p; index = numpy choice with the children's p as
    weights, i.e. searchsorted(cumsum(w) / sum(w), u, side="right").
    """
    cdf = np.cumsum(weights, dtype=np.float64)
    cdf /= cdf[-1]
    index = tf.reduce_sum(tf.cast(tf.constant(cdf[:-1]) <= u_choice, tf.int32))
    return u_gate < p, index


# --------------------------------------------------------------------------------------------
# Pixel transforms (image only): lookup tables, as albumentations builds them for uint8


def apply_lut(image, lut):
    """Map every uint8 value through a 256-entry uint8 table."""
    return tf.gather(lut, tf.cast(image, tf.int32))


def brightness_contrast_lut(alpha, beta):
    """RandomBrightnessContrast's uint8 table: clip(float32(i) * alpha + beta) cast to uint8.

    albucore.multiply_add builds it in float32 (numpy casts the Python scalars to float32) and
    `astype(uint8)` truncates, it does not round.
    """
    i = tf.range(256, dtype=tf.float32)
    v = i * tf.cast(alpha, tf.float32) + tf.cast(beta, tf.float32)
    return tf.cast(tf.clip_by_value(v, 0.0, 255.0), tf.uint8)


def brightness_contrast(image, alpha, beta):
    """out = clip(alpha * x + beta) (albumentations 2 has no mean-centred contrast)."""
    return apply_lut(image, brightness_contrast_lut(alpha, beta))


def sample_brightness_contrast(u_contrast, u_brightness):
    """alpha = 1 + U(contrast_limit); beta = U(brightness_limit) * 255 (brightness_by_max=True).

    From uniforms in [0, 1). ensure_safe_range defaults to False: alpha/beta are not adjusted.
    """
    alpha = 1.0 + _uniform(u_contrast, *CONTRAST_LIMIT)
    beta = _uniform(u_brightness, *BRIGHTNESS_LIMIT) * 255.0
    return alpha, beta


def gamma_lut(gamma):
    """RandomGamma's uint8 table: (arange(0, 256/255, 1/255) ** gamma * 255).astype(uint8).

    x ** gamma (not 1/gamma), float64, truncated; numpy's arange element i is i * (1/255).
    """
    x = tf.range(256, dtype=tf.float64) * (1.0 / 255)
    v = tf.pow(x, tf.cast(gamma, tf.float64)) * 255.0
    return tf.cast(v, tf.uint8)


def gamma_transform(image, gamma):
    return apply_lut(image, gamma_lut(gamma))


def sample_gamma(u):
    """gamma = U(gamma_limit) / 100, i.e. in [0.8, 1.2), from a uniform in [0, 1)."""
    return _uniform(u, *GAMMA_LIMIT) / 100.0


# --------------------------------------------------------------------------------------------
# Resampling: OpenCV's remap and resize, in TF ops


def _reflect_101(i, n):
    # cv2.BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba), for any distance outside.
    if n == 1:
        return tf.zeros_like(i)
    period = 2 * n - 2
    i = tf.math.floormod(tf.abs(i), period)
    return tf.where(i >= n, period - i, i)


def _tap_table(image, border, fill):
    """(flat pixel table, row length, index mapper) for remap's gathers.

    Constant border: the image gets a 1-pixel frame of `fill` and indices are clipped into the
    frame, so a tap outside reads `fill` without a per-tap select (cheaper than tf.where).
    """
    h, w, c = image.shape
    if border == "reflect_101":
        return (
            tf.reshape(image, [h * w, c]),
            w,
            lambda yi, xi: (_reflect_101(yi, h), _reflect_101(xi, w)),
        )
    if border != "constant":
        raise ValueError(f"border {border!r}: 'constant' or 'reflect_101'")
    framed = tf.pad(image, [[1, 1], [1, 1], [0, 0]], constant_values=tf.cast(fill, image.dtype))
    return (
        tf.reshape(framed, [(h + 2) * (w + 2), c]),
        w + 2,
        lambda yi, xi: (tf.clip_by_value(yi + 1, 0, h + 1), tf.clip_by_value(xi + 1, 0, w + 1)),
    )


def remap(image, map_x, map_y, interpolation="linear", border="constant", fill=0):
    """cv2.remap for a uint8 [H, W, C] image and float32 [H', W'] maps.

    linear: OpenCV 5 interpolates in float: with a = x - floor(x), b = y - floor(y),
      h0 = fma(a, p01 - p00, p00), h1 = fma(a, p11 - p10, p10), out = fma(b, h1 - h0, h0),
      rounded half to even. The FMAs are emulated exactly in float64 (a float32 times a small
      integer or float32 difference is exact there; one rounding to float32 follows, as an FMA's).
    nearest: (round-half-even(x), round-half-even(y)), as cv2's saturate_cast.
    border: "constant" (taps outside read `fill`, albumentations' default BORDER_CONSTANT, 0) or
      "reflect_101" (cv2.BORDER_REFLECT_101).
    """
    h, w, _ = image.shape
    table, row, wrap = _tap_table(image, border, fill)
    # Clipping keeps the int32 casts defined; with a constant border, anything beyond the frame
    # reads only `fill` (whatever its weights), so clipping to the frame changes nothing.
    lo, hi = (-2.0, 1.0) if border == "constant" else (-1e6, 1e6)
    x = tf.clip_by_value(tf.cast(map_x, tf.float32), lo, w + hi)
    y = tf.clip_by_value(tf.cast(map_y, tf.float32), lo, h + hi)
    if interpolation == "nearest":
        yi, xi = wrap(tf.cast(tf.round(y), tf.int32), tf.cast(tf.round(x), tf.int32))  # half even
        return tf.gather(table, yi * row + xi)
    if interpolation != "linear":
        raise ValueError(f"interpolation {interpolation!r}: 'linear' or 'nearest'")
    x0, y0 = tf.floor(x), tf.floor(y)
    a = tf.cast(x - x0, tf.float64)[..., None]  # exact in float32, as OpenCV's v_sub
    b = tf.cast(y - y0, tf.float64)[..., None]
    xi, yi = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    y_0, x_0 = wrap(yi, xi)
    y_1, x_1 = wrap(yi + 1, xi + 1)
    r0, r1 = y_0 * row, y_1 * row

    def tap(i):
        return tf.cast(tf.gather(table, i), tf.float64)

    p00, p01, p10, p11 = tap(r0 + x_0), tap(r0 + x_1), tap(r1 + x_0), tap(r1 + x_1)

    def fma32(s, d, base):  # float32(s * d + base) with a single rounding
        return tf.cast(s * d + base, tf.float32)

    h0 = fma32(a, p01 - p00, p00)
    h1 = fma32(a, p11 - p10, p10)
    d = tf.cast(h1 - h0, tf.float64)  # float32 subtraction, as OpenCV
    out = tf.round(fma32(b, d, tf.cast(h0, tf.float64)))
    return tf.cast(tf.clip_by_value(out, 0.0, 255.0), image.dtype)


def _resize_coeffs(src, dst, clamp):
    """OpenCV's INTER_LINEAR source index and 11-bit weights along one axis.

    f = float32((d + 0.5) * scale - 0.5), scale = 1 / (dst / src) in double; s = floor(f);
    weights saturate_cast<short>((1 - f) * 2048), (f * 2048) (round half to even). Along x the
    edges are clamped (s < 0 -> s = 0, f = 0; s >= src - 1 -> s = src - 1, f = 0); along y they
    are not: the two taps are clipped to the image but keep their weights.
    """
    src = tf.cast(src, tf.int32)
    src_f = tf.cast(src, tf.float64)
    scale = 1.0 / (dst / src_f)
    d = tf.range(dst, dtype=tf.float64)
    f = tf.cast((d + 0.5) * scale - 0.5, tf.float32)
    s = tf.cast(tf.floor(f), tf.int32)
    f = f - tf.cast(s, tf.float32)
    if clamp:
        low = s < 0
        f = tf.where(low, 0.0, f)
        s = tf.where(low, 0, s)
        high = s >= src - 1
        f = tf.where(high, 0.0, f)
        s = tf.where(high, src - 1, s)
    w0 = tf.cast(tf.round((1.0 - f) * 2048.0), tf.int32)
    w1 = tf.cast(tf.round(f * 2048.0), tf.int32)
    return tf.clip_by_value(s, 0, src - 1), tf.clip_by_value(s + 1, 0, src - 1), w0, w1


def linear_resize_plan(y0, x0, crop_h, crop_w, out_h, out_w):
    """Source rows/columns (offset by the crop origin) and weights of an INTER_LINEAR resize."""
    sy0, sy1, v0, v1 = _resize_coeffs(crop_h, out_h, clamp=False)
    sx0, sx1, w0, w1 = _resize_coeffs(crop_w, out_w, clamp=True)
    return y0 + sy0, y0 + sy1, v0, v1, x0 + sx0, x0 + sx1, w0, w1


def resize_linear_from_plan(image, rows0, rows1, v0, v1, cols0, cols1, w0, w1):
    """OpenCV's 8-bit INTER_LINEAR arithmetic, integer only (so safe to hand to XLA).

    Horizontal pass rows = p0*w0 + p1*w1 (exact int32); vertical pass with its SIMD rounding:
    t = ((r0 >> 4) * v0 >> 16) + ((r1 >> 4) * v1 >> 16), out = (t + 2) >> 2.
    """
    img = tf.cast(image, tf.int32)

    def horizontal(rows):
        r = tf.gather(img, rows)
        p0, p1 = tf.gather(r, cols0, axis=1), tf.gather(r, cols1, axis=1)
        return tf.bitwise.right_shift(p0 * w0[None, :, None] + p1 * w1[None, :, None], 4)

    t = tf.bitwise.right_shift(horizontal(rows0) * v0[:, None, None], 16)
    t += tf.bitwise.right_shift(horizontal(rows1) * v1[:, None, None], 16)
    return tf.cast(tf.clip_by_value(tf.bitwise.right_shift(t + 2, 2), 0, 255), image.dtype)


def crop_resize_linear(image, y0, x0, crop_h, crop_w, out_h, out_w):
    """cv2.resize(image[y0:y0+crop_h, x0:x0+crop_w], (out_w, out_h), INTER_LINEAR), uint8.

    Crop size may be a tensor (the crop is never materialised: indices are offset instead).
    A same-size "resize" is the identity, as cv2 (and albumentations, which skips it).
    """
    plan = linear_resize_plan(y0, x0, crop_h, crop_w, out_h, out_w)
    return resize_linear_from_plan(image, *plan)


def nearest_resize_plan(y0, x0, crop_h, crop_w, out_h, out_w):
    """INTER_NEAREST source rows/columns: min(floor(d * (1 / (dst / src))), src - 1).

    No half-pixel offset (that is INTER_NEAREST_EXACT); the double 1 / (dst / src), not src / dst,
    matters: the two differ in the last bit and flip some indices. (Also why this stays out of
    XLA, whose simplifier rewrites 1 / (a / b) as b / a.)
    """

    def index(src, dst):
        src_f = tf.cast(src, tf.float64)
        s = tf.floor(tf.range(dst, dtype=tf.float64) * (1.0 / (dst / src_f)))
        return tf.minimum(tf.cast(s, tf.int32), tf.cast(src, tf.int32) - 1)

    return y0 + index(crop_h, out_h), x0 + index(crop_w, out_w)


def gather_rows_cols(mask, rows, cols):
    return tf.gather(tf.gather(mask, rows), cols, axis=1)


def crop_resize_nearest(mask, y0, x0, crop_h, crop_w, out_h, out_w):
    """cv2.resize(mask[y0:y0+crop_h, x0:x0+crop_w], (out_w, out_h), INTER_NEAREST)."""
    return gather_rows_cols(mask, *nearest_resize_plan(y0, x0, crop_h, crop_w, out_h, out_w))


# --------------------------------------------------------------------------------------------
# Distortion maps (albumentations BaseDistortion: remap image linear, mask nearest, constant 0)


def gaussian_kernel(sigma):
    """cv2.getGaussianKernel for cv2.GaussianBlur(float32, ksize=(0, 0), sigma).

    ksize = cvRound(sigma * 4 * 2 + 1) | 1 for float images (49 taps for sigma 6), weights
    exp(-x^2 / (2 sigma^2)) normalised in double, stored as float32.
    """
    n = int(np.round(sigma * 4 * 2 + 1)) | 1
    x = np.arange(n) - (n - 1) / 2
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def _blur_matrix(n, kernel):
    """[n, n] matrix M with M @ v = v filtered by `kernel` with cv2.BORDER_REPLICATE."""
    r = len(kernel) // 2
    m = np.zeros((n, n), np.float64)
    for i in range(n):
        for t, k in enumerate(kernel.astype(np.float64)):
            m[i, min(max(i + t - r, 0), n - 1)] += k
    return m.astype(np.float32)


def elastic_maps(noise, alpha=ELASTIC_ALPHA, sigma=ELASTIC_SIGMA):
    """ElasticTransform's maps from raw noise [2, H, W] (float32 standard normal).

    As generate_displacement_fields: both fields are divided by their joint max |.| (if > 1e-6),
    then blurred *stacked* as one [2H, W] image with BORDER_REPLICATE (so the bottom rows of dx
    and the top rows of dy leak into each other, as in albumentations), then scaled by alpha.
    map = pixel grid + (dx, dy). approximate=False, same_dxdy=False. The replicate-bordered
    49-tap filter is folded into two constant matrices (one matmul per axis).
    """
    _, h, w = noise.shape
    noise = tf.cast(noise, tf.float32)
    max_abs = tf.reduce_max(tf.abs(noise))
    noise = tf.where(max_abs > 1e-6, noise / max_abs, noise)
    k = gaussian_kernel(sigma)
    rows = tf.constant(_blur_matrix(2 * h, k))
    cols = tf.constant(_blur_matrix(w, k).T)
    fields = tf.matmul(tf.matmul(rows, tf.reshape(noise, [2 * h, w])), cols) * alpha
    xs = tf.range(w, dtype=tf.float32)[None, :]
    ys = tf.range(h, dtype=tf.float32)[:, None]
    return xs + fields[:h], ys + fields[h:]


def sample_elastic_noise(key, height, width):
    """The [2, H, W] standard normal noise (noise_distribution="gaussian"), stateless key [2]."""
    return tf.random.stateless_normal([2, height, width], key, dtype=tf.float32)


def _grid_axis(n, steps, num_steps):
    """One axis of albumentations' generate_grid, after normalize_grid_distortion_steps.

    Static structure (segments of n // num_steps pixels, the last ones shorter or empty) is
    numpy; the steps are a float64 tensor [num_steps + 1]. Each segment is
    np.linspace(prev, cur, count) (endpoint included, so neighbouring segments repeat a value),
    computed as numpy does: pos * ((cur - prev) / (count - 1)) + prev, last = cur.
    """
    step = n // num_steps
    # normalize: shorten the last step, then rescale so the steps span n / floor(n / num_steps).
    last = min(n, (num_steps + 1) * step) - num_steps * step
    s = [steps[i] for i in range(num_steps + 1)]
    s[-1] = s[-1] * (last / step)
    total = s[0]
    for v in s[1:]:  # numpy sums 6 elements sequentially
        total = total + v
    factor = (n / np.floor(n / num_steps)) / total
    s = [v * factor for v in s]
    prev, cur = [], []
    acc = tf.constant(0.0, tf.float64)
    for v in s:
        prev.append(acc)
        acc = acc + step * v
        cur.append(acc)
    prev, cur = tf.stack(prev), tf.stack(cur)

    seg, pos, count = np.zeros(n, np.int32), np.zeros(n, np.float64), np.ones(n, np.float64)
    covered = np.zeros(n, bool)
    for i in range(num_steps + 1):
        start, end = i * step, min(i * step + step, n)
        seg[start:end] = i
        pos[start:end] = np.arange(end - start)
        count[start:end] = end - start
        covered[start:end] = True
    p, c = tf.gather(prev, seg), tf.gather(cur, seg)
    div = np.maximum(count - 1, 1)
    v = pos * ((c - p) / div) + p
    v = tf.where(tf.constant((pos == count - 1) & (count > 1)), c, v)
    v = tf.where(tf.constant(covered), v, tf.zeros_like(v))
    return tf.cast(v, tf.float32)


def grid_maps(steps_x, steps_y, height, width, num_steps=GRID_NUM_STEPS):
    """GridDistortion's maps (normalized=True) from steps [num_steps + 1] each (1 + U(limit))."""
    xx = _grid_axis(width, tf.cast(steps_x, tf.float64), num_steps)
    yy = _grid_axis(height, tf.cast(steps_y, tf.float64), num_steps)
    map_x = tf.broadcast_to(xx[None, :], [height, width])
    map_y = tf.broadcast_to(yy[:, None], [height, width])
    return map_x, map_y


def sample_grid_steps(u):
    """steps_x, steps_y: num_steps + 1 values each of 1 + U(distort_limit), from u [2, n + 1]."""
    s = 1.0 + _uniform(u, *GRID_DISTORT_LIMIT)
    return s[0], s[1]


def optical_maps(k, height, width):
    """OpticalDistortion's camera-model maps: cv2.initUndistortRectifyMap(K, [k, k, 0, 0, 0]).

    K = [[W, 0, W/2], [0, H, H/2]]; with no new camera matrix OpenCV centres the new one's
    principal point at ((W-1)/2, (H-1)/2) (so k = 0 shifts by half a pixel). Per pixel, in
    double and OpenCV's evaluation order: x = (u - (W-1)/2) / W, r2 = x^2 + y^2,
    kr = 1 + ((k3 r2 + k2) r2 + k1) r2 with k1 = k2 = k, k3 = 0; map_x = W * (x * kr) + W/2.
    k is float32 (the coefficient array is); maps float32.
    """
    k = tf.cast(tf.cast(k, tf.float32), tf.float64)
    u = tf.range(width, dtype=tf.float64)[None, :]
    v = tf.range(height, dtype=tf.float64)[:, None]
    x = (u - (width - 1) * 0.5) / width
    y = (v - (height - 1) * 0.5) / height
    r2 = x * x + y * y
    kr = 1.0 + ((0.0 * r2 + k) * r2 + k) * r2  # k3 = 0
    map_x = width * (x * kr) + width / 2
    map_y = height * (y * kr) + height / 2
    return tf.cast(map_x, tf.float32), tf.cast(map_y, tf.float32)


def sample_optical_k(u):
    """k = U(distort_limit) = U(-2, 2) (mode="camera"), from a uniform in [0, 1)."""
    return _uniform(u, *OPTICAL_DISTORT_LIMIT)


def distort(image, mask, map_x, map_y):
    """BaseDistortion.apply / apply_to_mask: linear image, nearest mask, BORDER_CONSTANT 0."""
    return (
        remap(image, map_x, map_y, "linear", "constant", 0),
        remap(mask, map_x, map_y, "nearest", "constant", 0),
    )


# --------------------------------------------------------------------------------------------
# RandomSizedCrop


def crop_height_range(size):
    return round(size * 156 / 224), size


def sample_crop(u_height, u_y, u_x, height, width, min_max_height, w2h_ratio=1.0):
    """(crop_h, crop_w, y0, x0) as RandomSizedCrop.get_params + get_crop_coords, from uniforms.

    crop_h = randint(min, max) inclusive (here min + floor(u * (max - min + 1))); crop_w =
    int(crop_h * w2h_ratio); h_start, w_start = random() in [0, 1); y0 = int((H - crop_h + 1) *
    h_start), so every offset 0..H-crop_h is equally likely. float64 keeps the products exact
    enough never to reach H - crop_h + 1 (clipped anyway).
    """
    lo, hi = min_max_height
    crop_h = tf.cast(tf.floor(lo + u_height * (hi - lo + 1)), tf.int32)
    crop_h = tf.minimum(crop_h, hi)
    crop_w = tf.cast(tf.cast(crop_h, tf.float64) * w2h_ratio, tf.int32)
    crop_h, crop_w = tf.minimum(crop_h, height), tf.minimum(crop_w, width)
    y0 = tf.cast(tf.cast(height - crop_h + 1, tf.float64) * u_y, tf.int32)
    x0 = tf.cast(tf.cast(width - crop_w + 1, tf.float64) * u_x, tf.int32)
    return crop_h, crop_w, tf.minimum(y0, height - crop_h), tf.minimum(x0, width - crop_w)


def _crop_kernels(image, mask, linear_plan, nearest_plan):
    return resize_linear_from_plan(image, *linear_plan), gather_rows_cols(mask, *nearest_plan)


_crop_kernels_xla = tf.function(_crop_kernels, jit_compile=True)


def random_sized_crop(image, mask, crop_h, crop_w, y0, x0, size, xla=False):
    """Crop, then resize to size x size (image INTER_LINEAR, mask INTER_NEAREST).

    xla=True runs the pixel arithmetic compiled (see apply_params); the index/weight plans are
    always computed by plain TF ops, as float rewrites by XLA would move some of them.
    """
    linear = linear_resize_plan(y0, x0, crop_h, crop_w, size, size)
    nearest = nearest_resize_plan(y0, x0, crop_h, crop_w, size, size)
    return (_crop_kernels_xla if xla else _crop_kernels)(image, mask, linear, nearest)


def random_sized_crop_xla(image, mask, crop_h, crop_w, y0, x0, size):
    return random_sized_crop(image, mask, crop_h, crop_w, y0, x0, size, xla=True)


# --------------------------------------------------------------------------------------------
# The Compose


def sample_params(seed, size):
    """Every random quantity of one example (cheap scalars; the elastic noise is drawn lazily)."""
    key, noise_key = example_keys(seed)
    u = draw_uniforms(key)
    pixel_applied, pixel_index = one_of(
        u[_U["pixel_gate"]], u[_U["pixel_choice"]], PIXEL_P, PIXEL_WEIGHTS
    )
    alpha, beta = sample_brightness_contrast(u[_U["contrast"]], u[_U["brightness"]])
    distort_applied, distort_index = one_of(
        u[_U["distort_gate"]], u[_U["distort_choice"]], DISTORT_P, DISTORT_WEIGHTS
    )
    g = _U["grid"]
    steps_x, steps_y = sample_grid_steps(
        tf.reshape(u[g : g + 2 * (GRID_NUM_STEPS + 1)], [2, GRID_NUM_STEPS + 1])
    )
    crop_h, crop_w, y0, x0 = sample_crop(
        u[_U["crop_height"]], u[_U["crop_y"]], u[_U["crop_x"]], size, size, crop_height_range(size)
    )
    return {
        "pixel_applied": pixel_applied,
        "pixel_index": pixel_index,  # 0 brightness/contrast, 1 gamma
        "alpha": alpha,
        "beta": beta,
        "gamma": sample_gamma(u[_U["gamma"]]),
        "distort_applied": distort_applied,
        "distort_index": distort_index,  # 0 elastic, 1 grid, 2 optical
        "elastic_key": noise_key,
        "grid_steps_x": steps_x,
        "grid_steps_y": steps_y,
        "optical_k": sample_optical_k(u[_U["optical"]]),
        "crop_applied": u[_U["crop_gate"]] < CROP_P,
        "crop_h": crop_h,
        "crop_w": crop_w,
        "crop_y0": y0,
        "crop_x0": x0,
    }


# XLA fuses the dozens of elementwise (partly float64) ops of remap into a few loops: about 4x
# faster than op-by-op execution on CPU (2-3x for the LUT gather), and the compiled functions run
# inside tf.data maps. Only computations XLA cannot change are compiled: its simplifier rewrites
# some float expressions (1 / (a / b) -> b / a), so the LUTs, the maps other than elastic and the
# crop's index/weight plans are plain TF ops; remap's float64 FMA emulation and the integer
# resize give the same bits either way (the tests compare the compiled functions with
# albumentations). Elastic maps are compiled: they are only float32-close to OpenCV's anyway.
apply_lut_xla = tf.function(apply_lut, jit_compile=True)
distort_xla = tf.function(distort, jit_compile=True)
elastic_maps_xla = tf.function(elastic_maps, jit_compile=True)


def apply_params(image, mask, params, size):
    """Run the three stages with given parameters; only the chosen branches execute (tf.cond)."""

    def lut():
        return tf.switch_case(
            params["pixel_index"],
            [
                lambda: brightness_contrast_lut(params["alpha"], params["beta"]),
                lambda: gamma_lut(params["gamma"]),
            ],
        )

    image = tf.cond(params["pixel_applied"], lambda: apply_lut_xla(image, lut()), lambda: image)

    def maps():
        return tf.switch_case(
            params["distort_index"],
            [
                lambda: elastic_maps_xla(sample_elastic_noise(params["elastic_key"], size, size)),
                lambda: grid_maps(params["grid_steps_x"], params["grid_steps_y"], size, size),
                lambda: optical_maps(params["optical_k"], size, size),
            ],
        )

    image, mask = tf.cond(
        params["distort_applied"], lambda: distort_xla(image, mask, *maps()), lambda: (image, mask)
    )
    image, mask = tf.cond(
        params["crop_applied"],
        lambda: random_sized_crop_xla(
            image,
            mask,
            params["crop_h"],
            params["crop_w"],
            params["crop_y0"],
            params["crop_x0"],
            size,
        ),
        lambda: (image, mask),
    )
    return image, mask


def xray_seg_train(image_u8, mask_u8, size, seed):
    """image uint8 [S, S, 3], mask uint8 [S, S, 1], seed int64 scalar -> augmented pair.

    Same contract as seg_augment.xray_seg_train; pure TF, so it parallelises in tf.data.
    """
    image = tf.ensure_shape(tf.convert_to_tensor(image_u8, tf.uint8), [size, size, 3])
    mask = tf.ensure_shape(tf.convert_to_tensor(mask_u8, tf.uint8), [size, size, 1])
    image, mask = apply_params(image, mask, sample_params(seed, size), size)
    image.set_shape([size, size, 3])
    mask.set_shape([size, size, 1])
    return image, mask
