"""The builders' label parsers and patient-level splits on the FULL real label files.

Reads ../shared/data/labels (or $TFMEDBENCH_SHARED_DATA/labels) with the same functions the
TFDS builders call, and checks the numbers against the files' published statistics.
"""

import collections
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from datasets_tfds.chestxray14 import chestxray14_dataset_builder as cxr14
from datasets_tfds.chexpert import chexpert_dataset_builder as chexpert

CHESTXRAY14_LABELS, CHEXPERT_LABELS = cxr14.LABELS, chexpert.LABELS


def _labels_dir():
    env = os.environ.get("TFMEDBENCH_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "labels"


def _read(name, parse):
    path = _labels_dir() / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set TFMEDBENCH_SHARED_DATA or provide ../shared/data)")
    with gzip.open(path, "rt", newline="") as lines:
        return parse(lines, name)


@pytest.fixture(scope="module")
def cxr14_entries():
    return _read("Data_Entry_2017_v2020.csv.gz", cxr14.parse_data_entry)


@pytest.fixture(scope="module")
def chexpert_entries():
    return _read("chexpert_train.csv.gz", chexpert.parse_chexpert_csv)


def test_chestxray14_counts(cxr14_entries):
    assert len(cxr14_entries) == 112_120
    assert len({e.patient_id for e in cxr14_entries}) == 30_805
    labels = np.array([e.labels for e in cxr14_entries])
    published = {
        "Infiltration": 19_894, "Effusion": 13_317, "Atelectasis": 11_559, "Nodule": 6_331,
        "Mass": 5_782, "Pneumothorax": 5_302, "Consolidation": 4_667,
        "Pleural_Thickening": 3_385, "Cardiomegaly": 2_776, "Emphysema": 2_516, "Edema": 2_303,
        "Fibrosis": 1_686, "Pneumonia": 1_431, "Hernia": 227,
    }  # fmt: skip
    assert dict(zip(CHESTXRAY14_LABELS, labels.sum(0).tolist())) == published
    assert int((labels.sum(1) == 0).sum()) == 60_361  # "No Finding"
    assert collections.Counter(e.view for e in cxr14_entries) == {"PA": 67_310, "AP": 44_810}
    assert collections.Counter(e.sex for e in cxr14_entries) == {"M": 63_340, "F": 48_780}


def test_chestxray14_patient_level_splits(cxr14_entries):
    seed = cxr14.TfmedbenchChestxray14.SPLIT_SEED
    parts = cxr14.split_entries(cxr14_entries, seed)  # no official lists: seeded 80/20
    sizes = {name: len(part) for name, part in parts.items()}
    assert sizes == {"train": 80_659, "validation": 8_972, "test": 22_489}
    patients = {name: {e.patient_id for e in part} for name, part in parts.items()}
    assert {k: len(v) for k, v in patients.items()} == {
        "train": 22_180, "validation": 2_464, "test": 6_161
    }  # fmt: skip
    assert not patients["train"] & patients["validation"]
    assert not patients["train"] & patients["test"]
    assert not patients["validation"] & patients["test"]
    # The split of the train_val pool with an official-style list is patient-level too.
    test_ids = [e.image_index for e in parts["test"]]
    train_val_ids = [e.image_index for e in parts["train"] + parts["validation"]]
    again = cxr14.split_entries(cxr14_entries, seed, train_val_ids, test_ids)
    assert {k: len(v) for k, v in again.items()} == sizes
    assert not {e.patient_id for e in again["train"]} & {e.patient_id for e in again["validation"]}


def test_chexpert_counts(chexpert_entries):
    assert len(chexpert_entries) == 223_414
    assert len({e.patient_id for e in chexpert_entries}) == 64_540
    assert sum(e.frontal for e in chexpert_entries) == 191_027
    raw = np.array([e.labels for e in chexpert_entries])
    assert raw.dtype.kind == "i" and set(np.unique(raw)) == {-2, -1, 0, 1}

    def count(name, value):
        return int((raw[:, CHEXPERT_LABELS.index(name)] == value).sum())

    # (positive, negative, uncertain, blank), counted from the file
    expected = {
        "No Finding": (22_381, 0, 0, 201_033),
        "Atelectasis": (33_376, 1_328, 33_739, 154_971),
        "Cardiomegaly": (27_000, 11_116, 8_087, 177_211),
        "Consolidation": (14_783, 28_097, 27_742, 152_792),
        "Edema": (52_246, 20_726, 12_984, 137_458),
        "Pleural Effusion": (86_187, 35_396, 11_628, 90_203),
        "Pneumonia": (6_039, 2_799, 18_770, 195_806),
        "Support Devices": (116_001, 6_137, 1_079, 100_197),
    }
    for name, counts in expected.items():
        assert tuple(count(name, v) for v in (1, 0, -1, -2)) == counts, name
    assert collections.Counter(e.ap_pa for e in chexpert_entries) == {
        "AP": 161_590, "": 32_387, "PA": 29_420, "LL": 16, "RL": 1
    }  # fmt: skip


def test_chexpert_patient_level_split(chexpert_entries):
    builder = chexpert.TfmedbenchChexpert
    parts = chexpert.split_train(chexpert_entries, builder.SPLIT_SEED, builder.VALIDATION_FRACTION)
    assert {k: len(v) for k, v in parts.items()} == {"train": 212_353, "validation": 11_061}
    patients = {k: {e.patient_id for e in v} for k, v in parts.items()}
    assert len(patients["train"]) == 61_313 and len(patients["validation"]) == 3_227
    assert not patients["train"] & patients["validation"]


def test_paper_split_lists_agree_with_the_label_file(cxr14_entries):
    """The paper's Xray14_*_official.txt (not redistributed: set TFMEDBENCH_PAPER_LISTS to the
    folder holding them) against Data_Entry_2017_v2020.csv, with the checks paper_split runs."""
    from datasets_tfds import split_lists

    folder = os.environ.get("TFMEDBENCH_PAPER_LISTS")
    if not folder:
        pytest.skip("set TFMEDBENCH_PAPER_LISTS to a folder holding the paper's split lists")
    lists, digests = {}, {}
    for split, name in cxr14.PAPER_LISTS.items():
        path = Path(folder, name)
        entries, digests[name] = split_lists.read_list(path, cxr14.parse_list_line,
                                                       builder_name="test")  # fmt: skip
        lists[split] = (path, entries)
    parts = split_lists.check_lists(lists, {e.image_index: e.labels for e in cxr14_entries},
                                    builder_name="test", labels_from="the CSV")  # fmt: skip
    assert {k: len(v) for k, v in parts.items()} == {
        "train": 75_312, "validation": 11_212, "test": 25_596
    }  # fmt: skip
    assert digests == cxr14.PAPER_SHA256
    patient = {e.image_index: e.patient_id for e in cxr14_entries}
    patients = {k: {patient[n] for n in v} for k, v in parts.items()}
    assert {k: len(v) for k, v in patients.items()} == {
        "train": 24_342, "validation": 3_666, "test": 2_797
    }  # fmt: skip
    assert not (patients["train"] & patients["validation"] or patients["train"] & patients["test"]
                or patients["validation"] & patients["test"])  # fmt: skip
