"""Tests of tfmedbench_drive on a generated official-layout tree and on the real DRIVE set."""

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from PIL import Image

from datasets_tfds import common, testing
from datasets_tfds.drive import drive_dataset_builder as drive
from datasets_tfds.drive import fake_data

H, W = drive.HEIGHT, drive.WIDTH


def shared_data():
    """The read-only real data (TFMEDBENCH_SHARED_DATA or <repo>/../shared/data), or None."""
    env = os.environ.get("TFMEDBENCH_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return path if path.is_dir() else None


write_tree = fake_data.write_tree


class DriveBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = drive.TfmedbenchDrive
    SPLITS = {"train": 2, "validation": 4, "test": 2}

    WRITE_TREE = staticmethod(write_tree)


def _build(manual_dir, data_dir):
    return testing.build(drive.TfmedbenchDrive, manual_dir, data_dir)


def test_pixels_are_lossless_and_masks_binary(tmp_path):
    top = write_tree(tmp_path / "raw", n_train=5, n_test=1)
    builder = _build(top, tmp_path / "data")  # the manual dir may be DRIVE/ itself
    (example,) = tfds.as_numpy(builder.as_dataset(split="test"))
    assert example["image_id"] == b"01_test"
    source = np.asarray(Image.open(top / "test" / "images" / "01_test.tif"))
    np.testing.assert_array_equal(example["image"], source)
    vessels = np.asarray(Image.open(top / "test" / "1st_manual" / "01_manual1.gif")) > 0
    np.testing.assert_array_equal(example["vessel_mask"][..., 0], vessels.astype(np.uint8))
    assert set(np.unique(example["fov_mask"])) == {0, 1}


def test_fake_vessels_are_visible_in_the_image(tmp_path):
    # Training tests segment these: vessel pixels are darker than the other FOV pixels.
    image, vessels, fov = fake_data.fundus(np.random.default_rng(0))
    green = image[..., 1].astype(float)
    assert green[vessels].mean() < 0.6 * green[fov & ~vessels].mean()
    assert fake_data.HEIGHT == drive.HEIGHT and fake_data.WIDTH == drive.WIDTH


def test_palette_mask_uses_colours_not_indices(tmp_path):
    top = write_tree(tmp_path / "raw", n_train=0, n_test=1)
    second = Image.open(top / "test" / "2nd_manual" / "01_manual2.gif")
    first = Image.open(top / "test" / "1st_manual" / "01_manual1.gif")
    np.testing.assert_array_equal(common.binary_mask(second), common.binary_mask(first))


def test_missing_annotation_is_listed(tmp_path):
    top = write_tree(tmp_path / "raw")
    (top / "training" / "1st_manual" / "23_manual1.gif").unlink()
    with pytest.raises(common.ManualDataError, match="23_manual1.gif"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_corrupt_image_is_named(tmp_path):
    top = write_tree(tmp_path / "raw")
    (top / "test" / "images" / "02_test.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(common.ManualDataError, match="02_test.tif"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_wrong_size_is_named(tmp_path):
    top = write_tree(tmp_path / "raw")
    Image.new("L", (W, H - 1)).save(top / "training" / "mask" / "22_training_mask.gif")
    with pytest.raises(common.ManualDataError, match="22_training_mask.gif.*583x565"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_empty_and_incomplete_manual_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(common.ManualDataError, match="(?s)tfmedbench_drive.*empty.*1st_manual"):
        _build(tmp_path / "empty", tmp_path / "data")
    (tmp_path / "partial" / "DRIVE" / "training" / "images").mkdir(parents=True)
    with pytest.raises(common.ManualDataError, match="missing under .*DRIVE.*test/images"):
        _build(tmp_path / "partial", tmp_path / "data")


def test_real_drive(tmp_path):
    data = shared_data()
    if data is None or not (data / "DRIVE").is_dir():
        pytest.skip("real DRIVE not found (set TFMEDBENCH_SHARED_DATA or provide ../shared/data)")
    builder = _build(data, tmp_path / "data")  # the folder holding DRIVE/
    sizes = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
    assert sizes == {"train": 16, "validation": 4, "test": 20}
    ids = set()
    for split in sizes:
        for ex in tfds.as_numpy(builder.as_dataset(split=split)):
            ids.add(ex["image_id"].decode())
            assert ex["image"].shape == (584, 565, 3) and ex["image"].dtype == np.uint8
            vessels, fov = ex["vessel_mask"][..., 0], ex["fov_mask"][..., 0] > 0
            assert set(np.unique(vessels)) == {0, 1}
            assert set(np.unique(ex["fov_mask"])) == {0, 1}
            # Measured on DRIVE: vessels cover 6.0-11.6 % of the image, 8.7-16.8 % of the FOV.
            assert 0.05 < vessels.mean() < 0.13, ex["image_id"]
            assert 0.08 < vessels[fov].mean() < 0.18, ex["image_id"]
            assert 0.6 < fov.mean() < 0.75  # FOV disc covers ~68 % of the frame
            assert vessels[~fov].mean() < 0.01  # annotations lie inside the FOV
    assert ids == {f"{i:02d}_training" for i in range(21, 41)} | {
        f"{i:02d}_test" for i in range(1, 21)
    }
