"""Tests of tfmedbench_nih_shenzhen on generated trees in the official NIH layout."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets_tfds import testing
from PIL import Image

from datasets_tfds import common
from datasets_tfds.nih_shenzhen import nih_shenzhen_dataset_builder as shenzhen

N_PER_CLASS = 10  # per class: 7 train, 1 validation, 2 test


def write_tree(root, n_per_class=N_PER_CLASS, top="ChinaSet_AllFiles"):
    """CHNCXR_####_{0,1}.png in `<root>/<top>/CXR_png`; a few RGB and 16-bit files like NIH's."""
    folder = Path(root, top, "CXR_png") if top else Path(root, "CXR_png")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2 * n_per_class):
        label = i % 2
        path = folder / f"CHNCXR_{i + 1:04d}_{label}.png"
        grey = rng.integers(0, 256, (12, 10), dtype=np.uint8)
        if i == 0:
            Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(path)
        elif i == 1:
            Image.fromarray(grey.astype(np.uint16) * 16).save(path)  # 12-bit data, 16-bit PNG
        else:
            Image.fromarray(grey, "L").save(path)
    return folder


class ShenzhenBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = shenzhen.TfmedbenchNihShenzhen
    SPLITS = {"train": 14, "validation": 2, "test": 4}

    WRITE_TREE = staticmethod(write_tree)


def _build(manual_dir, data_dir):
    return testing.build(shenzhen.TfmedbenchNihShenzhen, manual_dir, data_dir)


def _all_examples(builder):
    return {
        ex["image_id"].decode(): ex
        for split in ("train", "validation", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }


def test_labels_pixels_and_conversions(tmp_path):
    folder = write_tree(tmp_path / "raw")
    examples = _all_examples(_build(tmp_path / "raw", tmp_path / "data"))
    assert len(examples) == 2 * N_PER_CLASS
    for image_id, ex in examples.items():
        assert ex["label"] == int(image_id[-1])
        assert ex["image"].shape == (12, 10, 1) and ex["image"].dtype == np.uint8
    source = np.asarray(Image.open(folder / "CHNCXR_0003_0.png"))
    np.testing.assert_array_equal(examples["CHNCXR_0003_0"]["image"][..., 0], source)
    rgb = np.asarray(Image.open(folder / "CHNCXR_0001_0.png"))[..., 0]  # grey stored as RGB
    np.testing.assert_array_equal(examples["CHNCXR_0001_0"]["image"][..., 0], rgb)
    # 12-bit values in a 16-bit PNG are shifted right by 4: back to the original 8-bit grey.
    sixteen = np.asarray(Image.open(folder / "CHNCXR_0002_1.png")).astype(np.int64)
    np.testing.assert_array_equal(examples["CHNCXR_0002_1"]["image"][..., 0], sixteen >> 4)


@pytest.mark.parametrize("layout", ["bare_cxr_png", "top_folder", "cxr_png_itself"])
def test_accepts_alternative_manual_dirs(tmp_path, layout):
    top = None if layout == "bare_cxr_png" else "ChinaSet_AllFiles"
    folder = write_tree(tmp_path / "raw", top=top)
    manual = {
        "bare_cxr_png": tmp_path / "raw",
        "top_folder": folder.parent,
        "cxr_png_itself": folder,
    }[layout]
    builder = _build(manual, tmp_path / "data")
    assert builder.info.splits.total_num_examples == 2 * N_PER_CLASS


def test_split_is_deterministic_and_stratified():
    stems = [f"CHNCXR_{i:04d}_{int(i > 336)}" for i in range(1, 663)]
    cls = shenzhen.TfmedbenchNihShenzhen
    first = common.split_fractions(
        stems, cls.SPLIT_FRACTIONS, cls.SPLIT_SEED, strata=[s[-1] for s in stems]
    )
    again = common.split_fractions(
        list(reversed(stems)), cls.SPLIT_FRACTIONS, cls.SPLIT_SEED,
        strata=[s[-1] for s in reversed(stems)],
    )  # fmt: skip
    assert first == again
    assert {k: len(v) for k, v in first.items()} == {"train": 463, "validation": 67, "test": 132}
    assert sum(s.endswith("1") for s in first["test"]) == 65


def test_empty_manual_dir_names_builder_and_tree(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(common.ManualDataError) as err:
        _build(tmp_path / "raw", tmp_path / "data")
    message = str(err.value)
    assert "tfmedbench_nih_shenzhen" in message and "empty" in message
    assert "CHNCXR_0001_0.png" in message and str(tmp_path / "raw") in message


def test_folder_without_images_lists_what_is_missing(tmp_path):
    (tmp_path / "raw" / "ChinaSet_AllFiles" / "CXR_png").mkdir(parents=True)
    (tmp_path / "raw" / "ChinaSet_AllFiles" / "CXR_png" / "Thumbs.db").write_bytes(b"x")
    with pytest.raises(common.ManualDataError, match=r"missing under .*CHNCXR_\*\.png"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_corrupt_image_is_named(tmp_path):
    folder = write_tree(tmp_path / "raw", n_per_class=3)
    bad = folder / "CHNCXR_0004_1.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    with pytest.raises(common.ManualDataError, match="CHNCXR_0004_1.png"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_unexpected_file_name_is_named(tmp_path):
    folder = write_tree(tmp_path / "raw", n_per_class=3)
    shutil.copy(folder / "CHNCXR_0001_0.png", folder / "CHNCXR_0099_x.png")
    with pytest.raises(common.ManualDataError, match="CHNCXR_0099_x.png"):
        _build(tmp_path / "raw", tmp_path / "data")
