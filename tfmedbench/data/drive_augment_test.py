"""drive_augment against the originals: PIL 12 (ImageEnhance, Image.rotate), the Gaussian loop of
SA-UNet's keras_dataAug.py run as written, and numpy flips standing in for cv2.flip.

Every op is compared bit for bit for given parameters, on generated images and on the real DRIVE
training images (shared_data); the samplers against the discrete sets of the scripts.
"""

import random

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageFilter

from tfmedbench.data import drive_augment as D

ANGLES = (1, 90, 137, 180, 270, 359)


def _image(h, w, seed=0):
    """Random colours plus saturated and flat patches (clipping, flat-mean cases)."""
    rng = np.random.default_rng(seed)
    im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    im[: h // 3, : w // 3] = 255
    im[-(h // 3) :, -(w // 3) :] = 0
    im[: h // 4, -(w // 4) :] = (200, 30, 90)
    return im


def _mask(h, w, seed=0):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), bool)
    for cy, cx, r in rng.uniform([0, 0, 0.5], [h, w, max(h, w) / 3 + 1], (5, 3)):
        m |= (y - cy) ** 2 + (x - cx) ** 2 < r * r
    return m[..., None].astype(np.uint8)


def _drive(shared_data, index=0):
    """A real DRIVE training image (RGB 565x584) and its manual label as {0, 1}."""
    root = shared_data / "DRIVE" / "training"
    images = sorted((root / "images").glob("*.tif"))
    labels = sorted((root / "1st_manual").glob("*.gif"))
    if not images or len(images) != len(labels):
        pytest.skip(f"DRIVE training images/labels not found under {root}")
    image = np.array(Image.open(images[index]).convert("RGB"))
    label = np.array(Image.open(labels[index]).convert("L"))
    assert set(np.unique(label)) <= {0, 255}
    return image, (label // 255).astype(np.uint8)[..., None]


def _pil_color(image, color, brightness, contrast, sharpness):
    """randomColor of keras_dataAug.py with its four draws given (factors in tenths)."""
    im = Image.fromarray(image)
    im = ImageEnhance.Color(im).enhance(color / 10.0)
    im = ImageEnhance.Brightness(im).enhance(brightness / 10.0)
    im = ImageEnhance.Contrast(im).enhance(contrast / 10.0)
    return np.array(ImageEnhance.Sharpness(im).enhance(sharpness / 10.0))


def _pil_rotate(image, mask, angle):
    """randomRotation of keras_dataAug.py with its angle given."""
    im = Image.fromarray(image).rotate(angle, Image.BICUBIC)
    lab = Image.fromarray(mask[..., 0]).rotate(angle, Image.NEAREST)
    return np.array(im), np.array(lab)[..., None]


def _keras_dataaug_gaussian(image, zs):
    """keras_dataAug.randomGaussian as written, with random.gauss's standard normals supplied.

    One change: `img = np.asarray(image); img.flags.writeable = 1` raises on numpy 2 (PIL's
    array is read-only), so the array is copied. random.gauss(mu, sigma) is mu + z * sigma.
    """
    it = iter(zs)
    original = random.gauss
    random.gauss = lambda mu, sigma: mu + next(it) * sigma
    try:

        def gaussianNoisy(im, mean=0.2, sigma=0.3):
            for _i in range(len(im)):
                im[_i] += random.gauss(mean, sigma)
            return im

        img = np.array(image)
        width, height = img.shape[:2]
        img_r = gaussianNoisy(img[:, :, 0].flatten(), 0.2, 0.3)
        img_g = gaussianNoisy(img[:, :, 1].flatten(), 0.2, 0.3)
        img_b = gaussianNoisy(img[:, :, 2].flatten(), 0.2, 0.3)
        img[:, :, 0] = img_r.reshape([width, height])
        img[:, :, 1] = img_g.reshape([width, height])
        img[:, :, 2] = img_b.reshape([width, height])
        return np.uint8(img)
    finally:
        random.gauss = original


def _z_in_loop_order(z):
    # the loop draws channel 0 row-major, then channel 1, then channel 2
    return np.transpose(z, (2, 0, 1)).ravel().tolist()


def _color_params(p):
    return tuple(int(p[n]) for n in ("color", "brightness", "contrast", "sharpness"))


def _assert_equal(ours, ref, what):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, what
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() == 0, f"{what}: {np.mean(diff > 0):.2e} of values differ, max {diff.max()}"


# Graph-mode versions with dynamic sizes (traced once): tf.function/tf.data graphs are where
# grappler rewrites float arithmetic, so the PIL comparisons run there as well as eagerly.
_IMG = tf.TensorSpec([None, None, 3], tf.uint8)
_MSK = tf.TensorSpec([None, None, 1], tf.uint8)
_INT = tf.TensorSpec([], tf.int32)
_rotate_graph = tf.function(D.rotate, input_signature=[_IMG, _MSK, _INT])
_color_graph = tf.function(D.random_color, input_signature=[_IMG, _INT, _INT, _INT, _INT])


# ---------------------------------------------------------------------------------------------
# Layout


def test_slot_layout_partitions_the_thirteen_images():
    slots = (
        [D.SLOT_IDENTITY]
        + list(D.SLOTS_ROTATION)
        + list(D.SLOTS_COLOR)
        + list(D.SLOTS_NOISE)
        + [D.SLOT_HFLIP, D.SLOT_VFLIP, D.SLOT_HVFLIP]
    )
    assert D.EXPANSION == 13 and sorted(slots) == list(range(D.EXPANSION))


# ---------------------------------------------------------------------------------------------
# randomColor pieces == PIL


def test_blend_matches_pil_for_every_pixel_pair_and_factor():
    """Image.blend's truncation (inside [0, 1]) and clipping (outside): all 65536 pairs."""
    a, b = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    pa, pb = Image.fromarray(a), Image.fromarray(b)
    for k in range(31):
        ours = D.blend(a[..., None], b[..., None], k)[..., 0]
        _assert_equal(ours, np.array(Image.blend(pa, pb, k / 10.0)), f"blend k={k}")


def test_luma_matches_pil_convert_l():
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (256 * 256, 3), dtype=np.uint8)
    grid = np.stack(np.meshgrid(*[np.array([0, 1, 127, 128, 254, 255], np.uint8)] * 3), -1)
    greys = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)
    colours = np.concatenate([colours, grid.reshape(-1, 3), greys])
    image = colours[: (len(colours) // 64) * 64].reshape(64, -1, 3)
    ref = np.array(Image.fromarray(image).convert("L"))
    _assert_equal(tf.cast(D.luma(image), tf.uint8), ref, "convert('L')")


@pytest.mark.parametrize("h,w", [(1, 1), (2, 7), (3, 3), (7, 2), (31, 45)])
def test_smooth_matches_pil_filter_smooth(h, w):
    image = _image(h, w, seed=h * w)
    ref = np.array(Image.fromarray(image).filter(ImageFilter.SMOOTH))
    _assert_equal(D.smooth(image), ref, f"SMOOTH {h}x{w}")


@pytest.mark.parametrize("name", ["Color", "Brightness", "Contrast", "Sharpness"])
def test_each_enhancer_matches_pil_generated(name):
    ours_fn = {
        "Color": D.enhance_color,
        "Brightness": D.enhance_brightness,
        "Contrast": D.enhance_contrast,
        "Sharpness": D.enhance_sharpness,
    }[name]
    enhancer = getattr(ImageEnhance, name)
    for image in (_image(29, 37, seed=3), _image(2, 3, seed=4)):
        for k in range(31):
            ref = np.array(enhancer(Image.fromarray(image)).enhance(k / 10.0))
            _assert_equal(ours_fn(image, k), ref, f"{name} k={k} {image.shape}")


def test_contrast_mean_rounds_half_up():
    """int(mean + 0.5): greys 10 and 11 average 10.5 -> 11 (factor 0 returns the grey itself)."""
    image = np.array([[[10, 10, 10], [11, 11, 11]]], np.uint8)
    ref = np.array(ImageEnhance.Contrast(Image.fromarray(image)).enhance(0.0))
    assert (ref == 11).all()
    _assert_equal(D.enhance_contrast(image, 0), ref, "Contrast mean rounding")


def test_enhancers_and_random_color_match_pil_on_drive(shared_data):
    image, _ = _drive(shared_data)
    pim = Image.fromarray(image)
    for k in (0, 17, 30):
        for name, fn in (("Color", D.enhance_color), ("Sharpness", D.enhance_sharpness)):
            ref = getattr(ImageEnhance, name)(pim).enhance(k / 10.0)
            _assert_equal(fn(image, k), ref, f"{name} {k}")
    for k in (13, 20):
        for name, fn in (("Brightness", D.enhance_brightness), ("Contrast", D.enhance_contrast)):
            ref = getattr(ImageEnhance, name)(pim).enhance(k / 10.0)
            _assert_equal(fn(image, k), ref, f"{name} {k}")
    for params in ((0, 10, 10, 0), (30, 20, 20, 30), (13, 17, 12, 8)):  # min, max, mixed
        ref = _pil_color(image, *params)
        _assert_equal(_color_graph(image, *params), ref, f"randomColor {params}")


# ---------------------------------------------------------------------------------------------
# randomGaussian == the keras_dataAug.py loop


def test_gaussian_noise_matches_the_original_loop_incl_wraparound():
    """0 + (-1, 0) truncates to 0, 0 - 1.x wraps to 255, 255 + 1.x wraps to 0 (numpy's C cast)."""
    image = _image(24, 20, seed=5)
    z = np.random.default_rng(6).normal(size=image.shape)
    # force the edge cases: noise -0.5, -1.5, -2.5, +1.3, +0.999, 0 at value 0 and 255
    for row, noise in enumerate((-0.5, -1.5, -2.5, 1.3, 0.999, 0.0)):
        z[row, :4] = (noise - D.NOISE_MEAN) / D.NOISE_SIGMA
        image[row, :2], image[row, 2:4] = 0, 255
    noise = D.NOISE_MEAN + z * D.NOISE_SIGMA
    ref = _keras_dataaug_gaussian(image, _z_in_loop_order(z))
    assert ref[1, 0, 0] == 255 and ref[3, 2, 0] == 0 and ref[0, 0, 0] == 0  # the wraps happen
    _assert_equal(D.gaussian_noise(image, noise), ref, "randomGaussian")


def test_gaussian_noise_field_and_drive_crop_match_the_original(shared_data):
    image, _ = _drive(shared_data)
    crop = image[250:330, 240:330]  # vessels, disc edge and the black border
    key = tf.constant([3, 4], tf.int64)
    noise = D.noise_field(key, tf.shape(crop))
    z = tf.random.stateless_normal(tf.shape(crop), key, dtype=tf.float64).numpy()
    _assert_equal(noise, D.NOISE_MEAN + z * D.NOISE_SIGMA, "mu + z * sigma")
    ref = _keras_dataaug_gaussian(crop, _z_in_loop_order(z))
    _assert_equal(D.gaussian_noise(crop, noise), ref, "randomGaussian on DRIVE")


def test_gaussian_noise_moves_by_floor_of_the_noise():
    """On mid-grey: -1 with P(n < 0) = Phi(-2/3) = 0.2525, +1 with 1 - Phi(8/3) = 0.0038."""
    grey = np.full((256, 256, 3), 128, np.uint8)
    noise = D.noise_field(tf.constant([9, 9]), tf.shape(grey))
    delta = D.gaussian_noise(grey, noise).numpy().astype(int) - 128
    assert set(np.unique(delta)) <= {-2, -1, 0, 1, 2}
    assert abs(np.mean(delta == -1) - 0.2525) < 0.005
    assert abs(np.mean(delta == 1) - 0.0038) < 0.001


# ---------------------------------------------------------------------------------------------
# randomRotation == Image.rotate(angle, BICUBIC) / (angle, NEAREST)


def test_pil_transform_bicubic_is_the_a_minus_one_cubic():
    """Geometry.c's kernel, measured (resize's is a = -0.5): sampling an impulse of 100 on 100
    half-way between pixels gives 100 + 100 * (-1/8, 5/8, 5/8, -1/8), truncated (a = -0.5:
    93, 156, 156, 93); the last output samples x = 9.0, outside the image: the 0 fill."""
    row = np.full((1, 9), 100, np.uint8)
    row[0, 4] = 200
    half_pixel = (1, 0, 0.5, 0, 1, 0)
    shifted = Image.fromarray(row).transform((9, 1), Image.AFFINE, half_pixel, Image.BICUBIC)
    assert np.array(shifted)[0].tolist() == [100, 100, 87, 162, 162, 87, 100, 100, 0]


@pytest.mark.parametrize("h,w", [(23, 17), (16, 16), (1, 1), (1, 6), (2, 2)])
def test_rotation_matches_pil_for_every_angle(h, w):
    image, mask = _image(h, w, seed=h + w), _mask(h, w, seed=h)
    for angle in range(360):
        ours_image, ours_mask = _rotate_graph(image, mask, angle)
        ref_image, ref_mask = _pil_rotate(image, mask, angle)
        _assert_equal(ours_image, ref_image, f"image {h}x{w} angle {angle}")
        _assert_equal(ours_mask, ref_mask, f"mask {h}x{w} angle {angle}")


def test_rotation_matches_pil_on_drive(shared_data):
    image, mask = _drive(shared_data, index=1)
    for i, angle in enumerate(ANGLES):
        rotate = D.rotate if i % 2 else _rotate_graph  # eager and graph
        ours_image, ours_mask = rotate(image, mask, angle)
        ref_image, ref_mask = _pil_rotate(image, mask, angle)
        _assert_equal(ours_image, ref_image, f"DRIVE image angle {angle}")
        _assert_equal(ours_mask, ref_mask, f"DRIVE label angle {angle}")
        assert set(np.unique(ours_mask)) <= {0, 1}


def test_rotated_mask_is_nearest_neighbour():
    """Every output value is a source value or the 0 fill; a 1-pixel line stays 1 pixel wide."""
    mask = np.zeros((40, 40, 1), np.uint8)
    mask[20, 5:35] = 1
    for angle in (1, 33, 90, 359):
        out = D.rotate(_image(40, 40), mask, angle)[1].numpy()
        assert set(np.unique(out)) <= {0, 1}
        assert abs(int(out.sum()) - 30) <= 2  # nearest keeps the count; bilinear would smear


# ---------------------------------------------------------------------------------------------
# Sampling


def _draws(n, slot=1):
    ds = tf.data.Dataset.range(n).map(lambda i: D.draw_params(slot, tf.stack([i, i * 7 + 1])))
    return next(iter(ds.batch(n)))


def test_parameters_cover_exactly_the_scripts_sets_roughly_uniformly():
    n = 20000
    params = _draws(n)
    for name, (low, high) in zip(D._NAMES, D._RANGES):
        values = params[name].numpy()
        counts = np.bincount(values - low, minlength=high - low)
        assert values.min() == low and values.max() == high - 1 and len(counts) == high - low, name
        assert (counts > 0).all(), name
        expected = n / (high - low)
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        dof = high - low - 1
        assert chi2 < dof + 6 * np.sqrt(2 * dof), f"{name}: chi2 {chi2:.0f} for {dof} dof"


def test_slots_of_one_seed_draw_independently():
    n = 2000
    angles = np.stack([_draws(n, slot)["angle"].numpy() for slot in D.SLOTS_ROTATION])
    a, b, c = angles
    repeats = np.mean((a == b) | (b == c) | (a == c))
    assert repeats < 0.02  # 3 / 359 = 0.008 expected; the same draw for every slot would give 1


def test_noise_field_is_gaussian_with_the_scripts_mean_and_sigma():
    noise = D.noise_field(tf.constant([1, 2]), [300, 300, 3]).numpy()
    assert abs(noise.mean() - 0.2) < 0.003 and abs(noise.std() - 0.3) < 0.003


# ---------------------------------------------------------------------------------------------
# augment: slots, determinism, graph mode


def test_each_slot_does_what_its_number_says():
    image, mask = _image(30, 26, seed=8), _mask(30, 26, seed=8)
    seed = tf.constant([11, 12], tf.int64)
    for slot in range(D.EXPANSION):
        p = D.draw_params(slot, seed)
        out_image, out_mask = (t.numpy() for t in D.augment(image, mask, slot, seed))
        expect_mask = mask
        if slot == D.SLOT_IDENTITY:
            expect = image
        elif slot in D.SLOTS_ROTATION:
            expect, expect_mask = _pil_rotate(image, mask, int(p["angle"]))
        elif slot in D.SLOTS_COLOR:
            expect = _pil_color(image, *_color_params(p))
        elif slot in D.SLOTS_NOISE:
            z = tf.random.stateless_normal(image.shape, p["noise_key"], dtype=tf.float64).numpy()
            expect = _keras_dataaug_gaussian(image, _z_in_loop_order(z))
        else:  # cv2.flip codes 1, 0, -1
            axes = {D.SLOT_HFLIP: 1, D.SLOT_VFLIP: 0, D.SLOT_HVFLIP: (0, 1)}[slot]
            expect, expect_mask = np.flip(image, axes), np.flip(mask, axes)
        _assert_equal(out_image, expect, f"slot {slot} image")
        _assert_equal(out_mask, expect_mask, f"slot {slot} mask")


def test_same_seed_same_output_other_seed_differs():
    image, mask = _image(32, 32, seed=9), _mask(32, 32, seed=9)
    for slot in (1, 5, 8):
        a = D.augment(image, mask, slot, [5, 6])[0].numpy()
        b = D.augment(image, mask, slot, [5, 6])[0].numpy()
        c = D.augment(image, mask, slot, [5, 7])[0].numpy()
        assert np.array_equal(a, b), slot
        assert not np.array_equal(a, c), slot


def test_runs_in_tf_data_map_in_parallel_on_dynamic_sizes():
    sizes = [(33, 40), (20, 20)]  # non-square and square (rotate's 90/270 fast path)
    pairs = [(_image(h, w, seed=h), _mask(h, w, seed=w)) for h, w in sizes]

    def gen():
        for i, (image, mask) in enumerate(pairs):
            for slot in range(D.EXPANSION):
                yield image, mask, slot, [i, 100]

    signature = (_IMG, _MSK, _INT, tf.TensorSpec([2], tf.int32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    ds = ds.map(lambda im, m, s, k: (*D.augment(im, m, s, k), s, k), num_parallel_calls=4)
    for out_image, out_mask, slot, key in ds:
        i = int(key[0])
        eager_image, eager_mask = D.augment(*pairs[i], int(slot), key)
        assert out_image.dtype == tf.uint8 and out_mask.dtype == tf.uint8
        assert out_image.shape == pairs[i][0].shape and out_mask.shape == pairs[i][1].shape
        assert set(np.unique(out_mask.numpy())) <= {0, 1}
        _assert_equal(out_image, eager_image, f"tf.data vs eager, slot {int(slot)}")
        _assert_equal(out_mask, eager_mask, f"tf.data vs eager mask, slot {int(slot)}")


def test_tf_data_graph_matches_pil_on_drive(shared_data):
    image, mask = _drive(shared_data, index=2)
    seed = tf.constant([21, 0], tf.int64)
    slots = [D.SLOTS_ROTATION[0], D.SLOTS_COLOR[0]]
    ds = tf.data.Dataset.from_tensor_slices(slots).map(
        lambda s: D.augment(image, mask, s, seed), num_parallel_calls=2, deterministic=True
    )
    for slot, (out_image, out_mask) in zip(slots, ds):
        p = D.draw_params(slot, seed)
        if slot in D.SLOTS_ROTATION:
            expect, expect_mask = _pil_rotate(image, mask, int(p["angle"]))
        else:
            expect = _pil_color(image, *_color_params(p))
            expect_mask = mask
        _assert_equal(out_image, expect, f"tf.data slot {slot}")
        _assert_equal(out_mask, expect_mask, f"tf.data slot {slot} mask")


def test_bad_inputs_give_one_line_errors():
    image, mask = _image(8, 8), _mask(8, 8)
    with pytest.raises(ValueError, match="image must be uint8"):
        D.augment(image.astype(np.float32), mask, 0, [1, 2])
    with pytest.raises(ValueError, match=r"mask must be \[H, W, 1\]"):
        D.augment(image, np.repeat(mask, 3, -1), 0, [1, 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="slot >= 13"):
        D.augment(image, mask, 13, [1, 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="slot < 0"):
        D.augment(image, mask, -1, [1, 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="over 16384 px"):
        D.rotate_nearest(np.zeros((16385, 2, 1), np.uint8), 7)
