"""Tests of tfmedbench_siim_pneumothorax on generated trees in the challenge's layout.

The trees (`fake_data.write_tree`) hold real DICOM files (written with pydicom: file meta,
MONOCHROME2/1, UIDs) and a train-rle.csv in the challenge's relative, column-major RLE, several
rows per positive image.
"""

import gzip
import logging
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets_tfds import testing

pytest.importorskip("pydicom", reason="pydicom (tfmedbench[dicom]) is needed to write DICOMs")

from datasets_tfds import common, dicom  # noqa: E402
from datasets_tfds.siim_pneumothorax import fake_data  # noqa: E402
from datasets_tfds.siim_pneumothorax import siim_pneumothorax_dataset_builder as siim  # noqa: E402

N_PER_CLASS = 10  # per class: 7 train, 1 validation, 2 test
SMALL = 7  # per class 5 train, 1 validation, 1 test: the fewest that leave no split empty
SIZE = fake_data.SIZE  # rows x columns: not square, so a transposition error shows


write_tree = fake_data.write_tree


class SiimBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = siim.TfmedbenchSiimPneumothorax
    SPLITS = {"train": 14, "validation": 2, "test": 4}

    WRITE_TREE = staticmethod(write_tree)


def _build(manual_dir, data_dir, config="uint8"):
    return testing.build(siim.TfmedbenchSiimPneumothorax, manual_dir, data_dir, config)


def _all_examples(builder):
    return {
        ex["image_id"].decode(): ex
        for split in ("train", "validation", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }


def test_pixels_masks_and_skipped_files_are_logged(tmp_path, caplog):
    truth = write_tree(tmp_path / "raw", extra_unlabelled=2)
    with caplog.at_level(logging.WARNING):
        examples = _all_examples(_build(tmp_path / "raw", tmp_path / "data"))
    assert "skipping 2 DICOM file(s) that have no row in train-rle.csv" in caplog.text
    assert examples.keys() == truth.keys()
    for image_id, (pixels, mask) in truth.items():
        ex = examples[image_id]
        assert ex["image"].dtype == np.uint8 and ex["image"].shape == (*SIZE, 1)
        np.testing.assert_array_equal(ex["image"][..., 0], pixels)
        np.testing.assert_array_equal(ex["mask"][..., 0], mask)
        assert ex["has_pneumothorax"] == bool(mask.any())
    assert sum(bool(ex["has_pneumothorax"]) for ex in examples.values()) == N_PER_CLASS


def test_flat_folder_and_top_folder_as_manual_dir(tmp_path):
    truth = write_tree(tmp_path / "raw", flat=True, extra_unlabelled=0)
    builder = _build(tmp_path / "raw" / "siim-acr-pneumothorax", tmp_path / "data")
    assert builder.info.splits.total_num_examples == len(truth)


def test_uint16_config_keeps_deeper_pixels_and_uint8_names_the_file(tmp_path):
    truth = write_tree(tmp_path / "raw", n_per_class=SMALL, extra_unlabelled=0)
    image_id = sorted(truth)[0]
    path = next((tmp_path / "raw").rglob(f"{image_id}.dcm"))
    deep = np.random.default_rng(1).integers(0, 4096, SIZE, dtype=np.uint16)
    dicom.write(path, deep, bits_stored=12, sop_uid=image_id)
    examples = _all_examples(_build(tmp_path / "raw", tmp_path / "d16", config="uint16"))
    assert examples[image_id]["image"].dtype == np.uint16
    np.testing.assert_array_equal(examples[image_id]["image"][..., 0], deep)
    other = sorted(truth)[1]  # 8-bit sources are scaled by 257 onto the 16-bit range
    np.testing.assert_array_equal(
        examples[other]["image"][..., 0], truth[other][0].astype(np.uint16) * 257
    )
    with pytest.raises(common.ManualDataError, match=rf"{image_id}\.dcm.*12-bit.*uint16"):
        _build(tmp_path / "raw", tmp_path / "d8", config="uint8")


def test_truncated_dicom_is_named(tmp_path):
    truth = write_tree(tmp_path / "raw", n_per_class=SMALL, extra_unlabelled=0)
    path = next((tmp_path / "raw").rglob(f"{sorted(truth)[1]}.dcm"))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(common.ManualDataError, match=rf"truncated.*{path.name}"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_csv_row_without_dicom_is_an_error(tmp_path):
    truth = write_tree(tmp_path / "raw", n_per_class=SMALL, extra_unlabelled=0)
    gone = sorted(truth)[2]
    next((tmp_path / "raw").rglob(f"{gone}.dcm")).unlink()
    message = rf"(?s)1 image\(s\) named in .*train-rle.csv have no DICOM.*{gone}\.dcm"
    with pytest.raises(common.ManualDataError, match=message):
        _build(tmp_path / "raw", tmp_path / "data")


def test_rle_past_the_image_is_an_error_naming_the_image(tmp_path):
    truth = write_tree(tmp_path / "raw", n_per_class=SMALL, extra_unlabelled=0)
    csv_path = tmp_path / "raw" / "siim-acr-pneumothorax" / "train-rle.csv"
    bad = sorted(truth)[0]
    csv_path.write_text(csv_path.read_text() + f"{bad},700 100\n")  # 32*24 = 768 pixels
    with pytest.raises(common.ManualDataError, match=rf"{bad}.*past the 32x24 image"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_too_few_images_for_the_split_is_a_clear_error(tmp_path):
    write_tree(tmp_path / "raw", n_per_class=2, extra_unlabelled=0)
    message = "only 4 labelled images.*leaves validation, test empty"
    with pytest.raises(common.ManualDataError, match=message):
        _build(tmp_path / "raw", tmp_path / "data")


def test_empty_manual_dir_shows_the_expected_tree(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(common.ManualDataError) as err:
        _build(tmp_path / "raw", tmp_path / "data")
    assert "empty" in str(err.value) and "dicom-images-train/" in str(err.value)


def test_missing_pydicom_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)  # makes `import pydicom` raise
    with pytest.raises(common.ManualDataError, match=r'pip install "tfmedbench\[dicom\]"'):
        dicom.read("any.dcm")


def test_csv_header_with_leading_space_and_bad_rows():
    rows = siim.parse_rle_csv(["ImageId, EncodedPixels", "a,-1", "b,1 2", "b,5 1", ""])
    assert rows == {"a": ["-1"], "b": ["1 2", "5 1"]}
    with pytest.raises(common.ManualDataError, match="header"):
        siim.parse_rle_csv(["Image,Pixels", "a,-1"])
    with pytest.raises(common.ManualDataError, match="line 3"):
        siim.parse_rle_csv(["ImageId,EncodedPixels", "a,-1", "b"])


def test_split_is_seeded_exact_and_independent_of_order():
    ids = [f"1.2.3.{i}" for i in range(1000)]
    positive = [i % 5 == 0 for i in range(1000)]
    cls = siim.TfmedbenchSiimPneumothorax
    args = (cls.TEST_FRACTIONS, cls.VALIDATION_FRACTIONS, cls.SPLIT_SEED)
    parts = siim.split_train_validation_test(ids, positive, *args)
    again = siim.split_train_validation_test(ids[::-1], positive[::-1], *args)
    assert parts == again
    assert {k: len(v) for k, v in parts.items()} == {"train": 720, "validation": 80, "test": 200}
    assert set().union(*parts.values()) == set(ids)
    is_positive = dict(zip(ids, positive))
    assert sum(is_positive[i] for i in parts["test"]) == 40  # stratified: 20% of 200 positives


def _rles(n_images, n_rows):
    """{ImageId: [RLE]} with n_images ids and n_rows rows: the first ids have two regions."""
    rles = {f"1.2.3.{i}": ["-1"] for i in range(n_images)}
    for i in range(n_rows - n_images):
        rles[f"1.2.3.{i}"] = ["1 2", "5 1"]
    return rles


def test_release_is_detected_from_image_and_row_counts():
    assert siim.detect_release(_rles(10_675, 11_582)) == "stage1"
    assert siim.detect_release(_rles(12_047, 12_954)) == "stage2"
    assert siim.detect_release(_rles(12_047, 12_953)) == "unknown"  # an edited stage-2 file
    assert siim.PAPER_RELEASE == "stage1"


def test_release_of_the_real_csv(shared_data):
    path = shared_data / "labels" / "siim-pneumothorax-train-rle.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set TFMEDBENCH_SHARED_DATA to the shared data folder)")
    with gzip.open(path, "rt") as handle:
        assert handle.readline() == "ImageId, EncodedPixels\n"  # the same header as stage 1's
        handle.seek(0)
        assert siim.detect_release(siim.parse_rle_csv(handle, source=path)) == "stage2"


def test_build_records_the_release_in_the_metadata(tmp_path):
    truth = write_tree(tmp_path / "raw", n_per_class=SMALL, extra_unlabelled=0)
    _build(tmp_path / "raw", tmp_path / "data")
    info = tfds.builder("tfmedbench_siim_pneumothorax", data_dir=tmp_path / "data").info
    assert dict(info.metadata) == {
        "release": "unknown", "csv_file": "train-rle.csv", "csv_images": len(truth),
        "csv_rows": len(truth) + SMALL, "paper_release": "stage1",
    }  # fmt: skip  (positive images have two RLE rows each)
