"""Tests of tfmedbench_rsna_pe on generated trees in the competition's layout.

The trees (`fake_data.write_tree`) hold real CT DICOM files (pydicom: file meta, MONOCHROME2,
signed and unsigned pixels, RescaleSlope/Intercept, ImagePositionPatient, InstanceNumber) and a
train.csv with all 17 columns. Slices are written in an order that differs from both their z order and their
InstanceNumber order, so a wrong sort shows.
"""

import shutil
import unittest

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets_tfds import testing

pytest.importorskip("pydicom", reason="pydicom (tfmedbench[dicom]) is needed to write DICOMs")

from datasets_tfds import common, dicom  # noqa: E402
from datasets_tfds.rsna_pe import fake_data  # noqa: E402
from datasets_tfds.rsna_pe import rsna_pe_dataset_builder as rsna  # noqa: E402

try:
    import apache_beam as beam
except ImportError:  # the `beam` config is optional (pip install "tfmedbench[beam]")
    beam = None
# The competition's ids are 12 hex digits, not valid DICOM UIDs; pydicom warns on every file.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
NO_BEAM = "apache-beam is not installed (pip install \"tfmedbench[beam]\")"

N_PER_CLASS = 7  # studies per class: 5 train, 1 validation, 1 test
TOP, SIZE = fake_data.TOP, fake_data.SIZE
reference_window, write_tree = fake_data.reference_window, fake_data.write_tree


class RsnaPeBuilderTest(testing.GeneratedTree, tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = rsna.TfmedbenchRsnaPe
    BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
    SPLITS = {"train": 30, "validation": 6, "test": 6}  # 10 / 2 / 2 studies of 3 slices

    WRITE_TREE = staticmethod(write_tree)


@unittest.skipIf(beam is None, NO_BEAM)
class RsnaPeBeamBuilderTest(RsnaPeBuilderTest):
    BUILDER_CONFIG_NAMES_TO_TEST = ["beam"]


def _build(manual_dir, data_dir, config="default"):
    options = {}
    if config == "beam":
        options["beam_options"] = beam.options.pipeline_options.PipelineOptions(flags=[])
    return testing.build(rsna.TfmedbenchRsnaPe, manual_dir, data_dir, config, **options)


def _all_examples(builder):
    return {
        ex["sop_id"].decode(): ex
        for split in ("train", "validation", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }


def _check(examples, expected):
    assert examples.keys() == expected.keys()
    for sop, want in expected.items():
        got = examples[sop]
        assert got["image"].dtype == np.uint8 and got["image"].shape == (*SIZE, 3)
        np.testing.assert_array_equal(got["image"], want["image"], err_msg=sop)
        for name, value in want.items():
            if name != "image":
                value = value.encode() if isinstance(value, str) else value
                assert got[name] == value, (sop, name)


@pytest.fixture(scope="module")
def varied_tree(tmp_path_factory):
    """Two series in one study, a one-slice series, and a study ordered by InstanceNumber."""
    root = tmp_path_factory.mktemp("rsna_raw")
    expected = write_tree(root, series_slices={0: [4, 1], 8: [2]}, no_position=(3,))
    return root, expected


def test_windowing_neighbours_order_and_labels(varied_tree, tmp_path):
    root, expected = varied_tree
    _check(_all_examples(_build(root, tmp_path / "data")), expected)


@pytest.mark.skipif(beam is None, reason=NO_BEAM)
def test_beam_config_gives_the_same_examples(varied_tree, tmp_path):
    root, expected = varied_tree
    builder = _build(root / TOP, tmp_path / "data", config="beam")
    _check(_all_examples(builder), expected)
    default = _build(root, tmp_path / "data_default")
    for split in ("train", "validation", "test"):
        assert builder.info.splits[split].num_examples == default.info.splits[split].num_examples


def test_split_is_by_study(varied_tree, tmp_path):
    root, _ = varied_tree
    builder = _build(root, tmp_path / "data")
    studies = {
        split: {ex["study_id"] for ex in tfds.as_numpy(builder.as_dataset(split=split))}
        for split in ("train", "validation", "test")
    }
    assert [len(s) for s in studies.values()] == [10, 2, 2]
    assert not (studies["train"] & studies["test"] or studies["train"] & studies["validation"])


def test_truncated_dicom_is_named(tmp_path):
    write_tree(tmp_path / "raw")
    path = sorted((tmp_path / "raw").rglob("*.dcm"))[4]
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(common.ManualDataError, match=rf"truncated.*{path.name}"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_csv_row_without_dicom_is_named(tmp_path):
    write_tree(tmp_path / "raw")
    path = sorted((tmp_path / "raw").rglob("*.dcm"))[7]
    path.unlink()
    message = rf"1 row\(s\) without a DICOM \['{path.name}'\]"
    with pytest.raises(common.ManualDataError, match=message):
        _build(tmp_path / "raw", tmp_path / "data")


def test_dicom_without_csv_row_is_named(tmp_path):
    write_tree(tmp_path / "raw")
    first = sorted((tmp_path / "raw").rglob("*.dcm"))[0]
    stray = first.with_name("ffff00000000.dcm")
    shutil.copy(first, stray)
    with pytest.raises(common.ManualDataError, match=rf"1 DICOM\(s\) without a row .*{stray.name}"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_missing_csv_column_is_named(tmp_path):
    write_tree(tmp_path / "raw")
    csv_path = tmp_path / "raw" / TOP / "train.csv"
    csv_path.write_text(csv_path.read_text().replace("qa_motion", "qa_motions", 1))
    with pytest.raises(common.ManualDataError, match=r"lacks column\(s\) \['qa_motion'\]"):
        _build(tmp_path / "raw", tmp_path / "data")


def test_empty_manual_dir_shows_the_expected_tree(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(common.ManualDataError) as err:
        _build(tmp_path / "raw", tmp_path / "data")
    assert "empty" in str(err.value) and "<SOPInstanceUID>.dcm" in str(err.value)


def test_window_matches_the_original_and_survives_uniform_slices():
    hu = np.linspace(-1200, 1500, 400).reshape(20, 20)
    np.testing.assert_array_equal(dicom.window_uint8(hu, 100, 700), reference_window(hu))
    narrow = np.linspace(0, 300, 400).reshape(20, 20)  # does not reach the window ends
    np.testing.assert_array_equal(dicom.window_uint8(narrow, 100, 700), reference_window(narrow))
    assert not dicom.window_uint8(np.full((4, 4), 30.0)).any()


def test_split_is_seeded_and_order_independent():
    studies = [f"{i:012x}" for i in range(7279)]  # the real set has 7,279 studies
    has_pe = [i % 3 == 0 for i in range(7279)]
    cls = rsna.TfmedbenchRsnaPe
    args = (cls.TEST_FRACTIONS, cls.VALIDATION_FRACTIONS, cls.SPLIT_SEED)
    parts = rsna.split_studies(studies, has_pe, *args)
    assert parts == rsna.split_studies(studies[::-1], has_pe[::-1], *args)
    assert {k: len(v) for k, v in parts.items()} == {"train": 5242, "validation": 582, "test": 1455}
