"""Tests of tfmedbench_chestxray14 on generated trees in the NIH layouts."""

import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets_tfds import testing
from PIL import Image

from datasets_tfds import common
from datasets_tfds.chestxray14 import chestxray14_dataset_builder as cxr14

HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
)
FINDINGS = ["No Finding", "Cardiomegaly|Emphysema", "Hernia", "Effusion|Infiltration|Mass"]


def write_tree(root, n_patients=12, archive_layout=True, lists=True):
    """2 images per patient; the v2020 CSV; official lists with patients 1-3 as test."""
    root = Path(root)
    rng = np.random.default_rng(0)
    rows, names = [], []
    for patient in range(1, n_patients + 1):
        for follow_up in range(2):
            name = f"{patient:08d}_{follow_up:03d}.png"
            names.append(name)
            archive = 1 + (patient - 1) * 2 // n_patients  # images_001, images_002
            folder = root / (f"images_{archive:03d}/images" if archive_layout else "images")
            folder.mkdir(parents=True, exist_ok=True)
            grey = rng.integers(0, 256, (16, 12), dtype=np.uint8)
            if patient == 5 and follow_up == 1:  # NIH ships a few RGBA PNGs
                Image.fromarray(np.dstack([grey] * 3 + [np.full_like(grey, 255)])).save(
                    folder / name
                )
            else:
                Image.fromarray(grey).save(folder / name)
            finding = FINDINGS[(patient + follow_up) % len(FINDINGS)]
            view = "PA" if patient % 2 else "AP"
            sex = "M" if patient % 3 else "F"
            rows.append(
                f"{name},{finding},{follow_up},{patient},{40 + patient},{sex},{view},"
                f"2500,2048,0.143,0.143\n"
            )
    (root / "Data_Entry_2017_v2020.csv").write_text(HEADER + "".join(rows))
    if lists:
        test = [n for n in names if int(n[:8]) <= 3]
        (root / "test_list.txt").write_text("\n".join(test) + "\n")
        (root / "train_val_list.txt").write_text(
            "\n".join(n for n in names if n not in test) + "\n"
        )
    return root


class ChestXray14BuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = cxr14.TfmedbenchChestxray14
    # Official lists: test = patients 1-3 (6 images); validation = 1 of the 9 other patients.
    SPLITS = {"train": 16, "validation": 2, "test": 6}

    WRITE_TREE = staticmethod(lambda root: write_tree(Path(root) / "CXR8"))


def _build(manual_dir, data_dir):
    return testing.build(cxr14.TfmedbenchChestxray14, manual_dir, data_dir)


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
