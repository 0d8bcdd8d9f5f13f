"""seg_augment_tf (TF-native) against albumentations 2.0.8 / OpenCV (seg_augment.build_compose).

Per transform: the same explicit parameters give the same output as albumentations' own apply
functions (bit-identical everywhere except the elastic smoothing, float32 summation order).
Per sampler: the same distributions and OneOf/probability rates as albumentations' classes.
Pipeline: seeded, deterministic under parallel tf.data, uint8 shapes, binary masks.
"""

import os
import random

import numpy as np
import pytest
import tensorflow as tf

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

A = pytest.importorskip("albumentations")
cv2 = pytest.importorskip("cv2")
from albumentations.augmentations.geometric import functional as fgeometric

from tfmedbench.data import seg_augment
from tfmedbench.data import seg_augment_tf as T

S = 64
N_DRAWS = 2000


def _image(size, seed=0, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)


def _mask(size, seed=0):
    # blobs, not noise: boundaries like a real segmentation mask's
    y, x = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(seed)
    m = np.zeros((size, size), bool)
    for cy, cx, r in rng.uniform([0, 0, size / 10], [size, size, size / 3], (4, 3)):
        m |= (y - cy) ** 2 + (x - cx) ** 2 < r * r
    return m[..., None].astype(np.uint8)


def _random_maps(h, w, seed):
    """Warps that leave the image, plus exact .5 ties (rounding-mode check)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = (xx * 1.3 - 5 + rng.normal(0, 4, (h, w))).astype(np.float32)
    my = (yy * 1.2 - 4 + rng.normal(0, 4, (h, w))).astype(np.float32)
    mx[0, :8], my[0, :8] = np.arange(8) + 0.5, 3.5
    mx[1, :8], my[1, :8] = 2.5, np.arange(8) + 0.5
    return mx, my


# ---------------------------------------------------------------------------------------------
# Transforms with explicit parameters == albumentations' apply


@pytest.mark.parametrize(
    "alpha,beta", [(0.8, -51.0), (1.2, 51.0), (1.0, 0.0), (0.93, 12.7), (1.137, -3.3)]
)
def test_brightness_contrast_equals_albumentations(alpha, beta):
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)  # every value
    ref = A.RandomBrightnessContrast().apply(img, alpha=alpha, beta=beta)
    np.testing.assert_array_equal(T.brightness_contrast(img, alpha, beta).numpy(), ref)


def test_gamma_equals_albumentations():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
    for gamma in [0.8, 1.2, 1.0, *np.random.default_rng(0).uniform(0.8, 1.2, 30)]:
        ref = A.RandomGamma().apply(img, gamma=float(gamma))
        np.testing.assert_array_equal(T.gamma_transform(img, float(gamma)).numpy(), ref)


@pytest.mark.parametrize("xla", [False, True])
@pytest.mark.parametrize("border", ["constant", "reflect_101"])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_remap_equals_cv2(interpolation, border, xla):
    img = _image(48, 1)[:, :40].copy()  # non-square
    mx, my = _random_maps(48, 40, 2)
    flags = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
    borders = {"constant": cv2.BORDER_CONSTANT, "reflect_101": cv2.BORDER_REFLECT_101}
    ref = cv2.remap(
        img, mx, my, flags[interpolation], borderMode=borders[border], borderValue=(7, 7, 7)
    )
    fn = tf.function(T.remap, jit_compile=True) if xla else T.remap
    out = fn(img, mx, my, interpolation, border, fill=7).numpy()
    np.testing.assert_array_equal(out, ref)


def _assert_distortion_equal(transform, img, mask, ref_maps, tf_maps):
    ref_img = transform.apply(img, map_x=ref_maps[0], map_y=ref_maps[1])
    ref_mask = transform.apply_to_mask(mask, map_x=ref_maps[0], map_y=ref_maps[1])
    out_img, out_mask = T.distort_xla(img, mask, *tf_maps)  # what the pipeline runs
    np.testing.assert_array_equal(out_img.numpy(), ref_img)
    np.testing.assert_array_equal(out_mask.numpy(), ref_mask)


@pytest.mark.parametrize("size", [S, 50])  # 50: last grid cell shorter than the others
def test_grid_distortion_equals_albumentations(size):
    img, mask = _image(size, 3), _mask(size, 3)
    rng = np.random.default_rng(size)
    for _ in range(3):
        steps_x, steps_y = list(1 + rng.uniform(-0.3, 0.3, 6)), list(1 + rng.uniform(-0.3, 0.3, 6))
        norm = fgeometric.normalize_grid_distortion_steps(
            (size, size), 5, list(steps_x), list(steps_y)
        )
        ref = fgeometric.generate_grid((size, size), norm["steps_x"], norm["steps_y"], 5)
        maps = T.grid_maps(steps_x, steps_y, size, size)
        np.testing.assert_array_equal(maps[0].numpy(), ref[0])
        np.testing.assert_array_equal(maps[1].numpy(), ref[1])
        _assert_distortion_equal(A.GridDistortion(), img, mask, ref, maps)


@pytest.mark.parametrize("k", [-2.0, -0.81, 0.0, 0.37, 1.999])
def test_optical_distortion_equals_albumentations(k):
    img, mask = _image(S, 4), _mask(S, 4)
    ref = fgeometric.get_camera_matrix_distortion_maps((S, S), k)
    maps = T.optical_maps(k, S, S)
    np.testing.assert_array_equal(maps[0].numpy(), ref[0])
    np.testing.assert_array_equal(maps[1].numpy(), ref[1])
    _assert_distortion_equal(A.OpticalDistortion(distort_limit=2), img, mask, ref, maps)


class _FixedNoise:
    """Stands in for albumentations' numpy Generator: returns our noise as its standard_normal."""

    def __init__(self, noise):
        self.noise = noise

    def standard_normal(self, shape, dtype):
        assert tuple(shape) == self.noise.shape and dtype == np.float32
        return self.noise.copy()


def test_elastic_equals_albumentations_up_to_float32_smoothing():
    img, mask = _image(S, 5), _mask(S, 5)
    transform = A.ElasticTransform(alpha=120, sigma=120 * 0.05)
    coords = np.stack(np.meshgrid(np.arange(S), np.arange(S)))
    changed = flipped = 0
    for i in range(6):
        noise = T.sample_elastic_noise(tf.constant([i, 7], tf.int64), S, S).numpy()
        dx, dy = fgeometric.generate_displacement_fields(
            (S, S), 120, 6.0, False, (0, 0), _FixedNoise(noise), "gaussian"
        )
        ref = tuple((coords + np.stack([dx, dy])).astype(np.float32))
        maps = tuple(m.numpy() for m in T.elastic_maps_xla(noise))
        assert np.abs(dx).max() > 2  # a real warp, not ~identity
        # cv2's separable filter vs a float32 matmul: a few float32 ulps of the coordinates
        assert np.abs(maps[0] - ref[0]).max() < 3e-5 and np.abs(maps[1] - ref[1]).max() < 3e-5
        # the same maps give the same pixels; with ours, a ~1e-5 px shift moves a few values
        # across a .5 rounding boundary
        _assert_distortion_equal(transform, img, mask, ref, tuple(map(tf.constant, ref)))
        ref_img = transform.apply(img, map_x=ref[0], map_y=ref[1])
        ref_mask = transform.apply_to_mask(mask, map_x=ref[0], map_y=ref[1])
        out_img, out_mask = (o.numpy() for o in T.distort_xla(img, mask, *maps))
        diff = np.abs(out_img.astype(int) - ref_img)
        assert diff.max() <= 1
        changed += int((diff > 0).sum())
        flipped += int((out_mask != ref_mask).sum())
    total = 6 * S * S * 3
    assert changed / total < 2e-4  # measured ~4e-5 (64 and 224 px)
    assert flipped <= 2  # measured 0 in 25 fields


def _crop_cases(size, rng):
    lo, hi = T.crop_height_range(size)
    for h in range(lo, hi + 1):
        y0, x0 = rng.integers(0, size - h + 1, 2)
        yield h, int(y0), int(x0)
    yield lo, size - lo, 0  # corners
    yield lo, 0, size - lo


@pytest.mark.parametrize("size", [S, 224])  # 224: the real size (SIMD row widths)
def test_random_sized_crop_equals_albumentations(size):
    img, mask = _image(size, 6), _mask(size, 6)
    transform = A.RandomSizedCrop(min_max_height=T.crop_height_range(size), size=(size, size))
    for h, y0, x0 in _crop_cases(size, np.random.default_rng(size)):  # every crop height
        coords = (x0, y0, x0 + h, y0 + h)
        out_img, out_mask = T.random_sized_crop_xla(
            img, mask, tf.constant(h), tf.constant(h), tf.constant(y0), tf.constant(x0), size
        )
        np.testing.assert_array_equal(out_img.numpy(), transform.apply(img, crop_coords=coords))
        np.testing.assert_array_equal(
            out_mask.numpy(), transform.apply_to_mask(mask, crop_coords=coords)
        )


@pytest.mark.parametrize("pixel_index,distort_index", [(1, 1), (0, 2)])
def test_composed_pipeline_with_given_params_equals_albumentations_sequence(
    pixel_index, distort_index
):
    """apply_params with every stage on == albumentations' applies in the Compose's order."""
    img, mask = _image(S, 8), _mask(S, 8)
    params = dict(T.sample_params(tf.constant(3, tf.int64), S))
    params.update(
        pixel_applied=tf.constant(True),
        pixel_index=tf.constant(pixel_index),
        distort_applied=tf.constant(True),
        distort_index=tf.constant(distort_index),
        crop_applied=tf.constant(True),
    )
    out_img, out_mask = T.apply_params(tf.constant(img), tf.constant(mask), params, S)

    if pixel_index == 0:
        alpha, beta = float(params["alpha"]), float(params["beta"])
        ref_img = A.RandomBrightnessContrast().apply(img, alpha=alpha, beta=beta)
    else:
        ref_img = A.RandomGamma().apply(img, gamma=float(params["gamma"]))
    if distort_index == 1:
        steps = [list(params[k].numpy()) for k in ("grid_steps_x", "grid_steps_y")]
        norm = fgeometric.normalize_grid_distortion_steps((S, S), 5, *steps)
        mx, my = fgeometric.generate_grid((S, S), norm["steps_x"], norm["steps_y"], 5)
        distortion = A.GridDistortion()
    else:
        mx, my = fgeometric.get_camera_matrix_distortion_maps((S, S), float(params["optical_k"]))
        distortion = A.OpticalDistortion(distort_limit=2)
    ref_img, ref_mask = distortion.apply(ref_img, mx, my), distortion.apply_to_mask(mask, mx, my)
    x0, y0 = int(params["crop_x0"]), int(params["crop_y0"])
    coords = (x0, y0, x0 + int(params["crop_w"]), y0 + int(params["crop_h"]))
    crop = A.RandomSizedCrop(min_max_height=T.crop_height_range(S), size=(S, S))
    ref_img, ref_mask = crop.apply(ref_img, coords), crop.apply_to_mask(ref_mask, coords)
    assert not np.array_equal(ref_img, img)
    np.testing.assert_array_equal(out_img.numpy(), ref_img)
    np.testing.assert_array_equal(out_mask.numpy(), ref_mask)


# ---------------------------------------------------------------------------------------------
# Samplers: albumentations' distributions


@pytest.fixture(scope="module")
def tf_draws():
    """sample_params for N_DRAWS seeds, as numpy arrays."""

    @tf.function
    def draw(seeds):
        return tf.map_fn(
            lambda s: T.sample_params(s, S),
            seeds,
            fn_output_signature={k: v.dtype for k, v in T.sample_params(seeds[0], S).items()},
        )

    out = draw(tf.range(N_DRAWS, dtype=tf.int64))
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def albu_draws():
    """The albumentations Compose (seg_augment.build_compose) run N_DRAWS times, recording what ran.

    Each transform gets its own generator, once: albumentations' own semantics (independent
    decisions); Compose.set_random_seed would correlate them (module docstring).
    """
    compose = seg_augment.build_compose(S)
    compose = A.Compose(compose.transforms, save_applied_params=True)
    nodes = [compose]
    for t in compose.transforms:
        nodes += [t, *getattr(t, "transforms", [])]
    for i, t in enumerate(nodes):  # parents first: set_random_state propagates downwards
        t.set_random_state(np.random.default_rng(100 + i), random.Random(100 + i))
    img, mask = _image(S, 9), _mask(S, 9)
    runs = []
    for _ in range(N_DRAWS):
        out = compose(image=img, mask=mask)
        runs.append(dict(out["applied_transforms"]))
    return runs


def _binomial_ok(count, n, p, z=4.5):
    return abs(count - n * p) <= z * np.sqrt(n * p * (1 - p))


def test_one_of_and_probability_rates_match_albumentations(tf_draws, albu_draws):
    n = N_DRAWS
    pix, dist, crop = (
        tf_draws["pixel_applied"],
        tf_draws["distort_applied"],
        tf_draws["crop_applied"],
    )
    counts_tf = {
        "RandomBrightnessContrast": int((pix & (tf_draws["pixel_index"] == 0)).sum()),
        "RandomGamma": int((pix & (tf_draws["pixel_index"] == 1)).sum()),
        "ElasticTransform": int((dist & (tf_draws["distort_index"] == 0)).sum()),
        "GridDistortion": int((dist & (tf_draws["distort_index"] == 1)).sum()),
        "OpticalDistortion": int((dist & (tf_draws["distort_index"] == 2)).sum()),
        "RandomSizedCrop": int(crop.sum()),
    }
    expected = {
        "RandomBrightnessContrast": 0.3 / 2,
        "RandomGamma": 0.3 / 2,
        "ElasticTransform": 0.3 / 3,
        "GridDistortion": 0.3 / 3,
        "OpticalDistortion": 0.3 / 3,
        "RandomSizedCrop": 0.25,
    }
    for name, p in expected.items():
        count_albu = sum(name in r for r in albu_draws)
        assert _binomial_ok(counts_tf[name], n, p), (name, counts_tf[name], n * p)
        assert _binomial_ok(count_albu, n, p), (name, count_albu, n * p)
    # independent stages: joint rates are products (as albumentations with one generator each)
    assert _binomial_ok(int((pix & dist).sum()), n, 0.09)
    assert _binomial_ok(int((pix & dist & crop).sum()), n, 0.3 * 0.3 * 0.25)
    pix_albu = [("RandomBrightnessContrast" in r or "RandomGamma" in r) for r in albu_draws]
    dist_albu = [
        any(k in r for k in ("ElasticTransform", "GridDistortion", "OpticalDistortion"))
        for r in albu_draws
    ]
    assert _binomial_ok(sum(a and b for a, b in zip(pix_albu, dist_albu)), n, 0.09)


def _ks_same(a, b, c_alpha=2.22):
    """Two-sample Kolmogorov-Smirnov at alpha ~1e-4 (c = sqrt(-ln(alpha / 2) / 2))."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = np.abs(
        np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)
    ).max()
    return d < c_alpha * np.sqrt((len(a) + len(b)) / (len(a) * len(b)))


def test_parameter_distributions_match_albumentations(tf_draws, albu_draws):
    """Ranges as albumentations' get_params gives them, and the same distributions (KS)."""
    rbc = [r["RandomBrightnessContrast"] for r in albu_draws if "RandomBrightnessContrast" in r]
    gam = [r["RandomGamma"]["gamma"] for r in albu_draws if "RandomGamma" in r]
    crops = np.array(
        [r["RandomSizedCrop"]["crop_coords"] for r in albu_draws if "RandomSizedCrop" in r]
    )
    alpha, beta, gamma = tf_draws["alpha"], tf_draws["beta"], tf_draws["gamma"]
    assert 0.8 <= alpha.min() < 0.802 and 1.198 < alpha.max() < 1.2
    assert -51 <= beta.min() < -50.7 and 50.7 < beta.max() < 51
    assert 0.8 <= gamma.min() < 0.802 and 1.198 < gamma.max() < 1.2
    assert _ks_same(alpha, [p["alpha"] for p in rbc]) and _ks_same(beta, [p["beta"] for p in rbc])
    assert _ks_same(gamma, gam)

    # optical k and grid steps: albumentations returns only maps; its draws are py_random.uniform
    k = tf_draws["optical_k"]
    assert -2 <= k.min() < -1.99 and 1.99 < k.max() < 2
    assert _ks_same(k, np.random.default_rng(1).uniform(-2, 2, N_DRAWS))
    steps = np.concatenate([tf_draws["grid_steps_x"], tf_draws["grid_steps_y"]], 1)
    assert steps.shape == (N_DRAWS, 12) and 0.7 <= steps.min() < 0.701 and 1.299 < steps.max() < 1.3
    assert abs(np.corrcoef(steps[:, 0], steps[:, 1])[0, 1]) < 0.1  # independent draws

    lo, hi = T.crop_height_range(S)
    h, y0, x0 = tf_draws["crop_h"], tf_draws["crop_y0"], tf_draws["crop_x0"]
    assert (tf_draws["crop_w"] == h).all()  # w2h_ratio 1
    assert set(h) == set(range(lo, hi + 1))  # randint: both ends included
    assert (y0 >= 0).all() and (y0 <= S - h).all() and (x0 <= S - h).all()
    assert (y0 == S - h).any() and (
        y0 == 0
    ).any()  # the far offset is reachable, as in albumentations
    albu_h = crops[:, 3] - crops[:, 1]
    assert _ks_same(h, albu_h) and _ks_same(y0 / (S - h + 1), crops[:, 1] / (S - albu_h + 1))
    elastic_keys = tf_draws["elastic_key"]
    assert len({tuple(k) for k in elastic_keys}) == N_DRAWS


# ---------------------------------------------------------------------------------------------
# The pipeline function


def _run(seed, img, mask, size=S):
    out = T.xray_seg_train(tf.constant(img), tf.constant(mask), size, tf.constant(seed, tf.int64))
    return out[0].numpy(), out[1].numpy()


def test_seeded_shapes_dtypes_and_binary_masks():
    img, mask = _image(S, 10), _mask(S, 10)
    outs = {s: _run(s, img, mask) for s in range(16)}
    for image, m in outs.values():
        assert image.shape == (S, S, 3) and image.dtype == np.uint8
        assert m.shape == (S, S, 1) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    for s in (0, 5):
        np.testing.assert_array_equal(_run(s, img, mask)[0], outs[s][0])
        np.testing.assert_array_equal(_run(s, img, mask)[1], outs[s][1])
    augmented = [o for o in outs.values() if not np.array_equal(o[0], img)]
    assert len(augmented) >= 6  # ~63% of seeds change the image
    assert len({o[0].tobytes() for o in augmented}) == len(augmented)  # different seeds differ


def test_parallel_tf_data_map_is_deterministic_per_seed():
    img, mask = _image(S, 11), _mask(S, 11)
    ds = tf.data.Dataset.range(24).map(lambda s: (tf.constant(img), tf.constant(mask), s))
    ds = ds.map(
        lambda i, m, s: (*T.xray_seg_train(i, m, S, s), s),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    assert ds.element_spec[0].shape == (S, S, 3) and ds.element_spec[1].shape == (S, S, 1)
    got = {int(s): (i.numpy(), m.numpy()) for i, m, s in ds}
    assert sorted(got) == list(range(24))
    for s in (0, 7, 23):
        ref = _run(s, img, mask)
        np.testing.assert_array_equal(got[s][0], ref[0])
        np.testing.assert_array_equal(got[s][1], ref[1])
    assert all(set(np.unique(m)) <= {0, 1} for _, m in got.values())
