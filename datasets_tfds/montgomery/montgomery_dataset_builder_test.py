"""Tests of tfmedbench_montgomery on a generated MontgomerySet tree."""

import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from datasets_tfds import common, testing
from datasets_tfds.montgomery import fake_data
from datasets_tfds.montgomery import montgomery_dataset_builder as montgomery

H, W = fake_data.SIZE
write_tree = fake_data.write_tree


class MontgomeryBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = montgomery.TfmedbenchMontgomery
    # 10 per class: round(0.8 * 10) = 8 train_val (7 train, 1 validation), 2 test.
    SPLITS = {"train": 14, "validation": 2, "test": 4}

    WRITE_TREE = staticmethod(write_tree)


def _build(manual_dir, data_dir):
    return testing.build(montgomery.TfmedbenchMontgomery, manual_dir, data_dir)


def test_union_mask_and_lossless_uint16(tmp_path):
    top = write_tree(tmp_path / "raw")
    builder = _build(top, tmp_path / "data")  # MontgomerySet/ itself works too
    examples = {
        ex["image_id"].decode(): ex
        for split in ("train", "validation", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }
    expected = np.zeros((H, W), np.uint8)  # the rectangles fake_data draws
    expected[2:12, 1:5] = 1
    expected[3:12, 7:11] = 1
    np.testing.assert_array_equal(fake_data.union_mask(), expected)
    for image_id in ("MCUCXR_0001_1", "MCUCXR_0002_0", "MCUCXR_0003_1"):  # 0/255 and 0/1 masks
        np.testing.assert_array_equal(examples[image_id]["mask"][..., 0], expected)
        assert examples[image_id]["label"] == int(image_id[-1])
    sixteen = np.asarray(Image.open(top / "CXR_png" / "MCUCXR_0001_1.png"))
    np.testing.assert_array_equal(examples["MCUCXR_0001_1"]["image"][..., 0], sixteen)
    eight = np.asarray(Image.open(top / "CXR_png" / "MCUCXR_0002_0.png")).astype(np.uint16)
    image = examples["MCUCXR_0002_0"]["image"]
    assert image.dtype == np.uint16 and image.shape == (H, W, 1)
    np.testing.assert_array_equal(image[..., 0], eight * 257)


def test_missing_mask_is_listed(tmp_path):
    top = write_tree(tmp_path / "raw")
    (top / "ManualMask" / "rightMask" / "MCUCXR_0005_1.png").unlink()
    with pytest.raises(common.ManualDataError, match="rightMask/MCUCXR_0005_1.png"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_mask_of_other_size_is_named(tmp_path):
    top = write_tree(tmp_path / "raw")
    Image.new("L", (W + 1, H)).save(top / "ManualMask" / "leftMask" / "MCUCXR_0006_0.png")
    with pytest.raises(common.ManualDataError, match="leftMask/MCUCXR_0006_0.png.*14x13"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_corrupt_image_is_named(tmp_path):
    top = write_tree(tmp_path / "raw")
    (top / "CXR_png" / "MCUCXR_0007_1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(common.ManualDataError, match="MCUCXR_0007_1.png"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_without_masks_folder(tmp_path):
    top = write_tree(tmp_path / "raw")
    shutil.rmtree(top / "ManualMask")
    with pytest.raises(common.ManualDataError, match="(?s)tfmedbench_montgomery.*leftMask"):
        _build(tmp_path / "raw", tmp_path / "data")
