"""Tests of tfmedbench_chestxray14 on generated trees in the NIH layouts."""

import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from datasets_tfds import common, testing
from datasets_tfds.chestxray14 import chestxray14_dataset_builder as cxr14
from datasets_tfds.chestxray14 import fake_data

HEADER = fake_data.HEADER
write_tree = fake_data.write_tree
# Paper-style lists over 12 patients: 8 train, 2 validation, 2 test (not the official-list split).
PAPER_PATIENTS = {"train": range(1, 9), "validation": (9, 10), "test": (11, 12)}


def write_tree_with_lists(root):
    root = write_tree(Path(root) / "CXR8")
    fake_data.write_paper_lists(root, root / "Data_Entry_2017_v2020.csv", PAPER_PATIENTS)
    return root


class ChestXray14BuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = cxr14.TfmedbenchChestxray14
    BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
    # Official lists: test = patients 1-3 (6 images); validation = 1 of the 9 other patients.
    SPLITS = {"train": 16, "validation": 2, "test": 6}

    WRITE_TREE = staticmethod(lambda root: write_tree(Path(root) / "CXR8"))


class ChestXray14PaperSplitBuilderTest(ChestXray14BuilderTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["paper_split"]
    SPLITS = {"train": 16, "validation": 4, "test": 4}  # 2 images per listed patient

    WRITE_TREE = staticmethod(write_tree_with_lists)


def _build(manual_dir, data_dir, config=None):
    return testing.build(cxr14.TfmedbenchChestxray14, manual_dir, data_dir, config)


def _examples(builder):
    return {
        split: list(tfds.as_numpy(builder.as_dataset(split=split)))
        for split in ("train", "validation", "test")
    }


def test_features_and_patient_disjoint_splits(tmp_path):
    root = write_tree(tmp_path / "raw", archive_layout=False, lists=False)
    splits = _examples(_build(root, tmp_path / "data"))
    # 12 patients: round(0.8 * 12) = 10 train_val patients, 1 of which is validation.
    assert {k: len(v) for k, v in splits.items()} == {"train": 18, "validation": 2, "test": 4}
    patients = {k: {int(ex["patient_id"]) for ex in v} for k, v in splits.items()}
    assert not (patients["train"] & patients["validation"])
    assert not ((patients["train"] | patients["validation"]) & patients["test"])
    by_id = {ex["image_id"].decode(): ex for v in splits.values() for ex in v}
    hernia = by_id["00000002_000.png"]  # (2 + 0) % 4 -> Hernia
    assert hernia["labels"].dtype == np.uint8 and hernia["labels"].tolist() == [0] * 13 + [1]
    multi = by_id["00000002_001.png"]  # Effusion|Infiltration|Mass
    assert np.flatnonzero(multi["labels"]).tolist() == [2, 3, 4]
    assert by_id["00000004_000.png"]["labels"].sum() == 0  # No Finding
    ex = by_id["00000003_000.png"]
    assert (ex["age"], ex["sex"], ex["view"]) == (43, b"F", b"PA")
    source = np.asarray(Image.open(root / "images" / "00000003_000.png"))
    np.testing.assert_array_equal(ex["image"][..., 0], source)
    rgba = np.asarray(Image.open(root / "images" / "00000005_001.png"))
    np.testing.assert_array_equal(by_id["00000005_001.png"]["image"][..., 0], rgba[..., 0])


def test_parse_rejects_bad_rows():
    good = "00000001_000.png,Hernia,0,1,58Y,M,PA,1,1,1,1\n"
    (entry,) = cxr14.parse_data_entry(io.StringIO(HEADER + good))
    assert entry.age == 58 and entry.labels[-1] == 1
    for bad, message in (
        ("00000001_000.png,Hernias,0,1,58,M,PA,1,1,1,1\n", "unknown finding 'Hernias'"),
        ("00000001_000.png,No Finding|Hernia,0,1,58,M,PA,1,1,1,1\n", "No Finding"),
        (good + good, "duplicate"),
        ("00000001_000.png,Hernia,0,x,58,M,PA,1,1,1,1\n", "line 2"),
    ):
        with pytest.raises(ValueError, match=message):
            cxr14.parse_data_entry(io.StringIO(HEADER + bad))


def test_csv_row_naming_a_missing_image(tmp_path):
    root = write_tree(tmp_path / "raw")
    (root / "images_002" / "images" / "00000011_001.png").unlink()
    with pytest.raises(common.ManualDataError, match="1 image.*00000011_001.png"):
        _build(root, tmp_path / "data")


def test_corrupt_image_is_named(tmp_path):
    root = write_tree(tmp_path / "raw")
    bad = root / "images_001" / "images" / "00000001_001.png"
    data = bytearray(bad.read_bytes())
    data[60] ^= 0xFF  # bit flip inside the pixel data: the PNG CRC check catches it
    bad.write_bytes(bytes(data))
    with pytest.raises(common.ManualDataError, match="00000001_001.png"):
        _build(root, tmp_path / "data")


def test_split_list_problems(tmp_path):
    root = write_tree(tmp_path / "raw")
    (root / "test_list.txt").unlink()
    with pytest.raises(common.ManualDataError, match="only one of"):
        _build(root, tmp_path / "data")
    (root / "test_list.txt").write_text("00000001_000.png\n99999999_000.png\n")
    with pytest.raises(common.ManualDataError, match="no label row.*99999999_000.png"):
        _build(root, tmp_path / "data2")


def test_missing_label_file(tmp_path):
    root = write_tree(tmp_path / "raw")
    (root / "Data_Entry_2017_v2020.csv").unlink()
    with pytest.raises(
        common.ManualDataError, match="(?s)tfmedbench_chestxray14.*Data_Entry_2017_v2020.csv or"
    ):
        _build(root, tmp_path / "data")


def test_paper_split_follows_the_lists_and_is_recorded(tmp_path):
    root = write_tree(tmp_path / "raw", lists=False)
    lists = fake_data.write_paper_lists(tmp_path / "raw", root / "Data_Entry_2017_v2020.csv",
                                        PAPER_PATIENTS)  # fmt: skip
    builder = _build(root, tmp_path / "data", config="paper_split")
    for split, part in _examples(builder).items():
        assert sorted(ex["image_id"].decode() for ex in part) == sorted(lists[split])
    info = tfds.builder("tfmedbench_chestxray14/paper_split", data_dir=tmp_path / "data").info
    assert info.config_name == "paper_split"
    assert sorted(info.metadata["split_lists"]) == sorted(cxr14.PAPER_LISTS.values())
    assert info.metadata["split_lists_as_published"] is False


def test_paper_list_label_disagreeing_with_the_label_file_is_refused(tmp_path):
    root = write_tree(tmp_path / "raw")

    def flip_hernia(name, labels):  # 00000002_000.png is a Hernia in the CSV
        return labels[:-1] + (1 - labels[-1],) if name == "00000002_000.png" else labels

    fake_data.write_paper_lists(root, root / "Data_Entry_2017_v2020.csv", PAPER_PATIENTS,
                                label_of=flip_hernia)  # fmt: skip
    message = (r"Xray14_train_official.txt line 3: labels 0 0 0 0 0 0 0 0 0 0 0 0 0 0 of "
               r"00000002_000.png disagree with Data_Entry_2017_v2020.csv \(0 0 0 0 0 0 0 0 0 0 "
               r"0 0 0 1\); refusing")  # fmt: skip
    with pytest.raises(common.ManualDataError, match=message):
        _build(root, tmp_path / "data", config="paper_split")


def test_paper_list_grammar():
    name, labels = cxr14.parse_list_line("00000010_000.png 0 0 0 1 0 0 0 0 0 0 0 0 0 0")
    assert name == "00000010_000.png" and labels == (0, 0, 0, 1) + (0,) * 10
    for bad in ("00000010_000.png 0 0 0 1", "00000010_000.png" + " 2" * 14,
                "../00000010_000.png" + " 0" * 14, "00000010_000.png" + " 0" * 15):  # fmt: skip
        with pytest.raises(ValueError, match="14 labels"):
            cxr14.parse_list_line(bad)
