"""Tests of tfmedbench_nih_shenzhen on generated trees in the official NIH layout."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from datasets_tfds import common, split_lists, testing
from datasets_tfds.nih_shenzhen import fake_data
from datasets_tfds.nih_shenzhen import nih_shenzhen_dataset_builder as shenzhen

N_IMAGES = 20  # 10 per class: 7 train, 1 validation, 2 test
SIZE = (12, 10)  # not square, so a transposition shows
PAPER_COUNTS = {"train": 12, "validation": 3, "test": 5}  # not the seeded 14/2/4


def write_tree(root, n_images=N_IMAGES, top="ChinaSet_AllFiles"):
    return fake_data.write_tree(root, n_images, size=SIZE, top=top)


def write_tree_with_lists(root, counts=PAPER_COUNTS, lists_in=None):
    """The tree plus paper-format lists (in `lists_in`, default the manual dir); the lists."""
    folder = write_tree(root)
    return folder, fake_data.write_paper_lists(lists_in or root, folder, counts)


class ShenzhenBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = shenzhen.TfmedbenchNihShenzhen
    BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
    SPLITS = {"train": 14, "validation": 2, "test": 4}

    WRITE_TREE = staticmethod(write_tree)


class ShenzhenPaperSplitBuilderTest(ShenzhenBuilderTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["paper_split"]
    SPLITS = PAPER_COUNTS

    WRITE_TREE = staticmethod(write_tree_with_lists)


def _build(manual_dir, data_dir, config=None):
    return testing.build(shenzhen.TfmedbenchNihShenzhen, manual_dir, data_dir, config)


def _ids(builder, split):
    return sorted(ex["image_id"].decode() for ex in tfds.as_numpy(builder.as_dataset(split=split)))


def _all_examples(builder):
    return {
        ex["image_id"].decode(): ex
        for split in ("train", "validation", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }


def test_labels_pixels_and_conversions(tmp_path):
    folder = write_tree(tmp_path / "raw")
    examples = _all_examples(_build(tmp_path / "raw", tmp_path / "data"))
    assert len(examples) == N_IMAGES
    for image_id, ex in examples.items():
        assert ex["label"] == int(image_id[-1])
        assert ex["image"].shape == (*SIZE, 1) and ex["image"].dtype == np.uint8
    source = np.asarray(Image.open(folder / "CHNCXR_0003_0.png"))
    np.testing.assert_array_equal(examples["CHNCXR_0003_0"]["image"][..., 0], source)
    rgb = np.asarray(Image.open(folder / "CHNCXR_0001_0.png"))[..., 0]  # grey stored as RGB
    np.testing.assert_array_equal(examples["CHNCXR_0001_0"]["image"][..., 0], rgb)
    # 12-bit values in a 16-bit PNG are shifted right by 4: back to the original 8-bit grey.
    sixteen = np.asarray(Image.open(folder / "CHNCXR_0002_1.png")).astype(np.int64)
    assert int(sixteen.max()).bit_length() == 12  # the file really uses 12 bits
    np.testing.assert_array_equal(examples["CHNCXR_0002_1"]["image"][..., 0], sixteen >> 4)


def test_fake_tb_images_are_learnable():
    # The demo trains on these, so one feature must separate the classes: the mean grey of the
    # upper lung band (rows 25-45 %). Measured on 50 + 50 images: normal 95 +- 2 (max 98.5),
    # TB 126 +- 10 (min 108).
    rng = np.random.default_rng(0)
    band = slice(16, 29)
    normal = [fake_data.chest_xray(rng, 64, False)[band].mean() for _ in range(50)]
    tb = [fake_data.chest_xray(rng, 64, True)[band].mean() for _ in range(50)]
    assert max(normal) < min(tb)


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
    assert builder.info.splits.total_num_examples == N_IMAGES


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


def test_paper_split_follows_the_lists_and_is_recorded(tmp_path):
    _, lists = write_tree_with_lists(tmp_path / "raw")
    builder = _build(tmp_path / "raw", tmp_path / "data", config="paper_split")
    for split, names in lists.items():
        assert _ids(builder, split) == sorted(n[: -len(".png")] for n in names)
    # Reloaded from the data dir: the config and the lists it read are part of the dataset info.
    info = tfds.builder("tfmedbench_nih_shenzhen/paper_split", data_dir=tmp_path / "data").info
    assert info.config_name == "paper_split" and "463/65/134" in info.config_description
    digests = info.metadata["split_lists"]
    assert sorted(digests) == sorted(shenzhen.PAPER_LISTS.values())
    assert info.metadata["split_lists_as_published"] is False  # fixture lists, not the paper's
    assert _build(tmp_path / "raw", tmp_path / "d2").info.config_name == "default"


def test_paper_lists_beside_the_images_are_found(tmp_path):
    folder, _ = write_tree_with_lists(tmp_path / "raw", lists_in=tmp_path / "raw")
    for name in shenzhen.PAPER_LISTS.values():
        shutil.move(tmp_path / "raw" / name, folder / name)  # into CXR_png/
    builder = _build(tmp_path / "raw", tmp_path / "data", config="paper_split")
    assert builder.info.splits.total_num_examples == sum(PAPER_COUNTS.values())


def test_paper_split_without_lists_says_where_to_get_them(tmp_path):
    write_tree(tmp_path / "raw")
    with pytest.raises(common.ManualDataError) as err:
        _build(tmp_path / "raw", tmp_path / "data", config="paper_split")
    message = str(err.value)
    assert "\n" not in message and split_lists.SOURCE in message
    assert "ShenzenCXR_valid_data.txt" in message


def test_paper_list_naming_a_missing_image(tmp_path):
    folder, lists = write_tree_with_lists(tmp_path / "raw")
    (folder / lists["test"][2]).unlink()
    # The image is gone from the dataset: the test list's line 3 names it.
    with pytest.raises(common.ManualDataError, match=r"ShenzenCXR_test_data.txt line 3: .*not in"):
        _build(tmp_path / "raw", tmp_path / "data", config="paper_split")


def test_paper_list_label_disagreeing_with_the_file_name_is_refused(tmp_path):
    _, lists = write_tree_with_lists(tmp_path / "raw")
    path = tmp_path / "raw" / shenzhen.PAPER_LISTS["train"]
    lines = path.read_text().splitlines()
    name, label = lines[4].split(",")
    lines[4] = f"{name},{1 - int(label)}"
    path.write_text("\n".join(lines) + "\n")
    message = rf"ShenzenCXR_train_data.txt line 5: labels {1 - int(label)} of {name} disagree"
    with pytest.raises(common.ManualDataError, match=message):
        _build(tmp_path / "raw", tmp_path / "data", config="paper_split")


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
    folder = write_tree(tmp_path / "raw", n_images=6)
    bad = folder / "CHNCXR_0004_1.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    with pytest.raises(common.ManualDataError, match="CHNCXR_0004_1.png"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_unexpected_file_name_is_named(tmp_path):
    folder = write_tree(tmp_path / "raw", n_images=6)
    shutil.copy(folder / "CHNCXR_0001_0.png", folder / "CHNCXR_0099_x.png")
    with pytest.raises(common.ManualDataError, match="CHNCXR_0099_x.png"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_list_line_grammar():
    assert shenzhen.parse_list_line("CHNCXR_0402_1.png,1") == ("CHNCXR_0402_1.png", (1,))
    for bad in ("CHNCXR_0402_1.png", "CHNCXR_0402_1.png,2", "../CHNCXR_0402_1.png,1",
                "CHNCXR_402_1.png,1", "CHNCXR_0402_1.png,1,0"):  # fmt: skip
        with pytest.raises(ValueError, match="expected"):
            shenzhen.parse_list_line(bad)


def test_the_published_lists():
    """The paper's ShenzenCXR_*_data.txt (not redistributed: set TFMEDBENCH_PAPER_LISTS to the
    folder holding them), checked as paper_split checks them: labels = the names' digits."""
    import os

    folder = os.environ.get("TFMEDBENCH_PAPER_LISTS")
    if not folder:
        pytest.skip("set TFMEDBENCH_PAPER_LISTS to a folder holding the paper's split lists")
    lists, digests = {}, {}
    for split, name in shenzhen.PAPER_LISTS.items():
        path = Path(folder, name)
        entries, digests[name] = split_lists.read_list(path, shenzhen.parse_list_line,
                                                       builder_name="test")  # fmt: skip
        lists[split] = (path, entries)
    names = [e.name for _, entries in lists.values() for e in entries]
    assert sorted(int(n[7:11]) for n in names) == list(range(1, 663))  # all 662 NLM images
    own_labels = {n: (int(n[-5]),) for n in names}
    parts = split_lists.check_lists(lists, own_labels, builder_name="test", labels_from="names")
    assert {k: len(v) for k, v in parts.items()} == {"train": 463, "validation": 65, "test": 134}
    assert {k: sum(n[-5] == "1" for n in v) for k, v in parts.items()} == {
        "train": 235, "validation": 33, "test": 68
    }  # fmt: skip
    assert digests == shenzhen.PAPER_SHA256
