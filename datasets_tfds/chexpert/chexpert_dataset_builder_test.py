"""Tests of tfmedbench_chexpert on a generated CheXpert-v1.0-small tree."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from datasets_tfds import common, testing
from datasets_tfds.chexpert import chexpert_dataset_builder as chexpert
from datasets_tfds.chexpert import fake_data

TOP, HEADER = fake_data.TOP, fake_data.HEADER
_cells, write_tree = fake_data.cells, fake_data.write_tree


class ChexpertBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = chexpert.TfmedbenchChexpert
    # 20 train patients x 2 views; round(0.95 * 20) = 19 train patients, 1 validation patient.
    SPLITS = {"train": 38, "validation": 2, "test": 3}

    WRITE_TREE = staticmethod(write_tree)


def _build(manual_dir, data_dir):
    return testing.build(chexpert.TfmedbenchChexpert, manual_dir, data_dir)


def test_raw_labels_views_and_pixels(tmp_path):
    base = write_tree(tmp_path / "raw", top="renamed_folder")  # CSV paths still say TOP
    builder = _build(base, tmp_path / "data")
    examples = {
        ex["image_id"].decode(): ex
        for split in ("train", "validation", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }
    ex = examples["train/patient00003/study1/view2_lateral.jpg"]
    expected = [{"1.0": 1, "0.0": 0, "-1.0": -1, "": -2}[c] for c in _cells(3 + 2)]
    assert ex["labels"].dtype == np.int8 and ex["labels"].tolist() == expected
    assert not ex["frontal"] and ex["ap_pa"] == b"" and ex["patient_id"] == 3
    front = examples["train/patient00003/study1/view1_frontal.jpg"]
    assert front["frontal"] and front["ap_pa"] == b"AP" and front["sex"] == b"Female"
    assert front["age"] == 33
    decoded = np.asarray(Image.open(base / "train/patient00003/study1/view1_frontal.jpg"))
    np.testing.assert_array_equal(front["image"][..., 0], decoded)  # PNG keeps JPEG's pixels
    patients = {
        split: {int(ex["patient_id"]) for ex in tfds.as_numpy(builder.as_dataset(split=split))}
        for split in ("train", "validation", "test")
    }
    assert patients["test"] == {64541, 64542}
    assert len(patients["validation"]) == 1 and not patients["validation"] & patients["train"]


def test_parse_rejects_bad_rows():
    row = f"{TOP}/train/patient00001/study1/view1_frontal.jpg,Male,40,Frontal,PA,"
    (entry,) = chexpert.parse_chexpert_csv(io.StringIO(HEADER + row + ",".join(_cells(0)) + "\n"))
    assert entry.image_id == "train/patient00001/study1/view1_frontal.jpg"
    for bad_row, message in (
        (row + ",".join(["0.5"] + _cells(0)[1:]), "line 2: bad value"),
        (row + ",".join(_cells(0)[1:]), "13 fields|18 fields"),
        (row.replace("Frontal,", "Oblique,") + ",".join(_cells(0)), "Frontal/Lateral"),
        (row.replace("patient00001", "p1") + ",".join(_cells(0)), "unexpected Path"),
    ):
        with pytest.raises(ValueError, match=message):
            chexpert.parse_chexpert_csv(io.StringIO(HEADER + bad_row + "\n"))
    with pytest.raises(ValueError, match="unexpected header"):
        chexpert.parse_chexpert_csv(io.StringIO(HEADER.replace("Edema", "Oedema")))


def test_csv_row_naming_a_missing_image(tmp_path):
    base = write_tree(tmp_path / "raw")
    (base / "valid/patient64542/study1/view1_frontal.jpg").unlink()
    with pytest.raises(common.ManualDataError, match="patient64542/study1/view1_frontal.jpg"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_corrupt_image_is_named(tmp_path):
    base = write_tree(tmp_path / "raw")
    bad = base / "train/patient00007/study1/view1_frontal.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(common.ManualDataError, match="patient00007/study1/view1_frontal.jpg"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_missing_csv(tmp_path):
    base = write_tree(tmp_path / "raw")
    (base / "valid.csv").unlink()
    with pytest.raises(common.ManualDataError, match="(?s)tfmedbench_chexpert.*valid.csv"):
        _build(tmp_path / "raw", tmp_path / "data")
