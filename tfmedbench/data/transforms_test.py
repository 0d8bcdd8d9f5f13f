import numpy as np
import tensorflow as tf

from tfmedbench.data import seg_augment, transforms


def seed(a, b=0):
    return tf.constant([a, b], tf.int64)


def test_to_float_rgb_scales_by_dtype_and_expands_grey():
    u8 = tf.constant([[[255]]], tf.uint8)
    u16 = tf.constant([[[65535]]], tf.uint16)
    assert transforms.to_float_rgb(u8).numpy().tolist() == [[[1.0, 1.0, 1.0]]]
    assert transforms.to_float_rgb(u16).numpy().tolist() == [[[1.0, 1.0, 1.0]]]


def test_imagenet_normalisation():
    x = tf.constant([[[0.485, 0.456, 0.406]]])
    np.testing.assert_allclose(transforms.normalize(x).numpy(), 0.0, atol=1e-6)


def test_normalize_rgb_is_normalize_of_to_float_rgb_bit_for_bit():
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (37, 29, 1), dtype=np.uint8),
        rng.integers(0, 256, (37, 29, 3), dtype=np.uint8),
        rng.integers(0, 65536, (16, 20, 1), dtype=np.uint16),
        rng.standard_normal((10, 9, 9, 1)).astype(np.float32),  # TenCrop stacks: rank 4
        rng.standard_normal((10, 9, 9, 3)).astype(np.float32),
    ]
    for image in images:
        for mode in ("imagenet", "none"):
            want = transforms.normalize(transforms.to_float_rgb(tf.constant(image)), mode)
            got = transforms.normalize_rgb(tf.constant(image), mode)
            assert got.shape == want.shape and got.dtype == tf.float32
            np.testing.assert_array_equal(got.numpy(), want.numpy())
            # Inside tf.data (graph mode), as the pipeline runs it.
            ds = tf.data.Dataset.from_tensors(image).map(lambda x: transforms.normalize_rgb(x, mode))
            np.testing.assert_array_equal(next(iter(ds)).numpy(), want.numpy())


def test_random_resized_crop_box_within_image_and_in_torchvision_ranges():
    areas = []
    for i in range(200):
        y0, x0, h, w = [int(v) for v in transforms.random_resized_crop_box(seed(i), 100, 80)]
        assert 0 <= y0 and 0 <= x0 and y0 + h <= 100 and x0 + w <= 80 and h > 0 and w > 0
        areas.append(h * w / 8000)
    assert 0.05 < min(areas) and max(areas) <= 1.0 and np.mean(areas) > 0.3


def test_random_ops_are_deterministic_per_seed():
    img = tf.random.stateless_uniform([50, 40, 3], seed=[1, 2])
    a = transforms.xray_cls_train(img, 32, seed(7)).numpy()
    b = transforms.xray_cls_train(img, 32, seed(7)).numpy()
    c = transforms.xray_cls_train(img, 32, seed(8)).numpy()
    assert a.shape == (32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_resize_banded_is_tf_image_resize_within_float_rounding():
    """Antialiased bilinear by banded matrix products = tf.image.resize(antialias=True) (the
    ScaleAndTranslate kernel) up to float32 summation order: shrinking, enlarging, both at
    once, 8- and 16-bit, sizes not divisible by the blocks; `flip` = mirroring the output."""
    rng = np.random.default_rng(0)
    cases = [((517, 388, 1), np.uint8), ((224, 224, 1), np.uint8), ((90, 140, 1), np.uint8),
             ((301, 613, 1), np.uint8), ((250, 260, 1), np.uint16), ((7, 640, 1), np.uint8),
             ((640, 3, 1), np.uint8)]
    for shape, dtype in cases:
        image = tf.constant(rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype))
        want = transforms.resize(transforms.to_float(image), 224).numpy()
        got = transforms.resize_banded(image, 224).numpy()
        assert got.shape == want.shape == (224, 224, 1)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        flipped = transforms.resize_banded(image, 224, tf.constant(True)).numpy()
        np.testing.assert_array_equal(flipped, got[:, ::-1])
    # The per-pixel agreement is not trivial: the wrong kernel width is far off.
    image = tf.constant(rng.integers(0, 256, (517, 388, 1), dtype=np.uint8))
    plain = tf.image.resize(transforms.to_float(image), (224, 224), antialias=False).numpy()
    assert np.abs(transforms.resize_banded(image, 224).numpy() - plain).max() > 0.05
    odd = tf.constant(rng.integers(0, 256, (333, 301, 1), dtype=np.uint8))  # 30 = 4 uneven blocks
    np.testing.assert_allclose(transforms.resize_banded(odd, 30).numpy(),
                               transforms.resize(transforms.to_float(odd), 30).numpy(), atol=1e-6)


def test_xray_cls_train_from_grey_jpeg_bytes_decodes_only_the_crop_bit_for_bit():
    import io

    from PIL import Image

    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (64, 48), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(grey).resize((660, 700), Image.BICUBIC))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95)
    data = tf.constant(buf.getvalue())
    decoded = tf.io.decode_jpeg(data, channels=1, dct_method="INTEGER_ACCURATE")
    graph = tf.function(lambda image, s: transforms.xray_cls_train(image, 32, s, rgb=False))
    for i in range(12):  # crops of many sizes (some above BANDED_RESIZE_MAX_SIDE), flipped or not
        want = graph(decoded, seed(i)).numpy()
        np.testing.assert_array_equal(graph(data, seed(i)).numpy(), want)
        if i < 2:  # eagerly too (eager and graph matmuls may round differently: not compared)
            eager = [transforms.xray_cls_train(x, 32, seed(i), rgb=False) for x in (data, decoded)]
            np.testing.assert_array_equal(eager[0].numpy(), eager[1].numpy())


def test_rotate_zero_is_identity_and_180_is_double_flip():
    img = tf.reshape(tf.range(5 * 5 * 1, dtype=tf.float32), [5, 5, 1])
    np.testing.assert_array_equal(transforms.rotate(img, 0.0).numpy(), img.numpy())
    np.testing.assert_allclose(
        transforms.rotate(img, 180.0).numpy(), img.numpy()[::-1, ::-1], atol=1e-4
    )


def test_rotate_90_counter_clockwise_like_torchvision():
    img = np.zeros((5, 5, 1), np.float32)
    img[0, 4] = 1  # top-right corner
    out = transforms.rotate(tf.constant(img), 90.0).numpy()
    assert out[0, 0, 0] == 1  # counter-clockwise: top-right goes to top-left


def test_ten_crop_is_corners_centre_and_mirrored():
    img = np.arange(6 * 6, dtype=np.float32).reshape(6, 6, 1)
    crops = transforms.ten_crop(tf.constant(img), 4).numpy()
    assert crops.shape == (10, 4, 4, 1)
    np.testing.assert_array_equal(crops[0], img[:4, :4])
    np.testing.assert_array_equal(crops[3], img[2:, 2:])
    np.testing.assert_array_equal(crops[4], img[1:5, 1:5])
    np.testing.assert_array_equal(crops[5], img[:, ::-1][:4, :4])


def test_seg_augment_keeps_mask_binary_and_is_seeded():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64, 1), np.uint8)
    mask[16:48, 16:48] = 1
    aug = seg_augment.SegAugment(64)
    outs = [aug(image, mask, s) for s in range(40)]
    changed = 0
    for img_out, mask_out in outs:
        assert img_out.shape == (64, 64, 3) and mask_out.shape[:2] == (64, 64)
        assert set(np.unique(mask_out)) <= {0, 1}
        changed += not np.array_equal(img_out, image)
    assert 5 < changed < 40  # the three OneOf/crop blocks fire with p 0.3/0.3/0.25
    again = aug(image, mask, 3)
    np.testing.assert_array_equal(again[0], outs[3][0])


def test_seg_augment_decisions_are_independent():
    # OneOf(p 0.3), OneOf(p 0.3), crop(p 0.25) drawn independently leave an example untouched with
    # p = 0.7 * 0.7 * 0.75 = 0.3675. Reseeding every transform with the same seed (albumentations'
    # Compose.set_random_seed) correlated them: 0.69 measured.
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = (rng.random((32, 32, 1)) < 0.3).astype(np.uint8)
    aug = seg_augment.SegAugment(32)
    n = 600
    untouched = sum(np.array_equal(aug(image, mask, s)[0], image) for s in range(n))
    expected, sd = 0.3675 * n, (0.3675 * 0.6325 * n) ** 0.5
    assert abs(untouched - expected) < 4 * sd, (untouched, expected)
