"""NIH ChestX-ray14 (benchmark task DXC14): 112,120 frontal CXRs, 14 multi-hot findings."""

from __future__ import annotations

import csv
from typing import NamedTuple
import logging

import numpy as np
import tensorflow_datasets as tfds

from datasets_tfds import common
from tfmedbench.tasks import CHESTXRAY14_LABELS

log = logging.getLogger(__name__)

LABEL_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")  # first found wins
NO_FINDING = "No Finding"
_LABEL_INDEX = {name: i for i, name in enumerate(CHESTXRAY14_LABELS)}

_EXPECTED_TREE = """\
CXR8/                              (optional level; any name, or pass the folder itself)
  Data_Entry_2017_v2020.csv        or Data_Entry_2017.csv
  train_val_list.txt               optional official split (with test_list.txt)
  test_list.txt
  images/00000001_000.png ...      all images in one folder, or the archive layout:
  images_001/images/00000001_000.png ... images_012/images/00030805_000.png
"""


class Entry(NamedTuple):
    """One row of Data_Entry_2017*.csv."""

    image_index: str
    labels: tuple  # 14 ints in {0, 1}, order of CHESTXRAY14_LABELS
    patient_id: int
    age: int
    sex: str
    view: str


def parse_data_entry(lines, source="Data_Entry_2017.csv"):
    """Parse the rows of Data_Entry_2017[_v2020].csv (an iterable of text lines) into Entries.

    `Finding Labels` is pipe-separated; "No Finding" means all zeros and may not be combined with
    a finding. Unknown finding names, duplicate images and malformed numbers raise ValueError
    naming the row, so a changed file format never yields silently wrong labels.
    """
    reader = csv.DictReader(lines)
    needed = ("Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender",
              "View Position")  # fmt: skip
    missing = [c for c in needed if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; found {reader.fieldnames}")
    entries, seen = [], set()
    for row_number, row in enumerate(reader, start=2):
        where = f"{source} line {row_number} ({row['Image Index']})"
        name = row["Image Index"].strip()
        if name in seen:
            raise ValueError(f"{where}: duplicate image")
        seen.add(name)
        findings = [f.strip() for f in row["Finding Labels"].split("|")]
        labels = [0] * len(CHESTXRAY14_LABELS)
        for finding in findings:
            if finding == NO_FINDING:
                if len(findings) > 1:
                    raise ValueError(f"{where}: 'No Finding' combined with findings")
                continue
            if finding not in _LABEL_INDEX:
                raise ValueError(f"{where}: unknown finding {finding!r}")
            labels[_LABEL_INDEX[finding]] = 1
        try:
            patient_id = int(row["Patient ID"])
            age = int(row["Patient Age"].strip().rstrip("Yy"))  # some copies write "058Y"
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        entries.append(
            Entry(name, tuple(labels), patient_id, age, row["Patient Gender"].strip(),
                  row["View Position"].strip())
        )  # fmt: skip
    return entries


def split_entries(entries, seed, train_val=None, test=None, validation_fraction=0.1):
    """{split: [Entry]}: official train_val/test lists when given, else a seeded 80/20 by patient;
    validation is a seeded `validation_fraction` of the train_val patients (no patient in two
    splits when the test split is patient-disjoint, as NIH's official one is)."""
    if train_val is None:
        by_patient = common.split_by_group(
            [e.image_index for e in entries], [e.patient_id for e in entries],
            {"train_val": 0.8, "test": 0.2}, seed,
        )  # fmt: skip
        train_val, test = by_patient["train_val"], by_patient["test"]
    train_val, test = set(train_val), set(test)
    both = train_val & test
    if both:
        raise ValueError(f"{len(both)} image(s) in both split lists, e.g. {sorted(both)[:3]}")
    known = {e.image_index for e in entries}
    unknown = sorted((train_val | test) - known)
    if unknown:
        raise ValueError(
            f"{len(unknown)} image(s) in the split lists have no label row, e.g. {unknown[:3]}"
        )
    unassigned = known - train_val - test
    if unassigned:
        raise ValueError(
            f"{len(unassigned)} labelled image(s) are in neither split list, "
            f"e.g. {sorted(unassigned)[:3]}"
        )
    pool = [e for e in entries if e.image_index in train_val]
    inner = common.split_by_group(
        [e.image_index for e in pool], [e.patient_id for e in pool],
        {"train": 1 - validation_fraction, "validation": validation_fraction}, seed,
    )  # fmt: skip
    return {
        "train": [e for e in pool if e.image_index in inner["train"]],
        "validation": [e for e in pool if e.image_index in inner["validation"]],
        "test": [e for e in entries if e.image_index in test],
    }


class TfmedbenchChestxray14(tfds.core.GeneratorBasedBuilder):
    """NIH ChestX-ray14 with patient-disjoint train/validation/test splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: official test list; validation = seeded 10% of train_val "
        "patients."
    }
    SPLIT_SEED = 2021  # part of the dataset version
    VALIDATION_FRACTION = 0.1
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
tfmedbench_chestxray14: download the NIH ChestX-ray14 release
(https://nihcc.app.box.com/v/ChestXray-NIHCC): Data_Entry_2017_v2020.csv, train_val_list.txt,
test_list.txt and images_001.tar.gz ... images_012.tar.gz; extract the archives (each holds
images/) and pass the folder as --manual_dir. Expected tree:
{_EXPECTED_TREE}"""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(None, None, 1), dtype=np.uint8, encoding_format="png"
                    ),
                    # Multi-hot in tfmedbench.tasks.CHESTXRAY14_LABELS order; "No Finding" = zeros.
                    "labels": tfds.features.Tensor(shape=(14,), dtype=np.uint8),
                    "image_id": tfds.features.Text(),
                    "patient_id": tfds.features.Scalar(dtype=np.int32),
                    "age": tfds.features.Scalar(dtype=np.int32),
                    "sex": tfds.features.Text(),  # "M" | "F"
                    "view": tfds.features.Text(),  # "PA" | "AP"
                }
            ),
            supervised_keys=("image", "labels"),
            homepage="https://nihcc.app.box.com/v/ChestXray-NIHCC",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("", "CXR8", "ChestX-ray14"),
            required=(LABEL_FILES, ("images/*.png", "images_*/images/*.png")),
            expected_tree=_EXPECTED_TREE,
        )
        label_file = next(root / f for f in LABEL_FILES if (root / f).exists())
        with label_file.open("r") as lines:
            entries = self._checked(lambda: parse_data_entry(lines, str(label_file)))
        images = self._image_paths(root)
        missing = [e.image_index for e in entries if e.image_index not in images]
        if missing:  # never a silently smaller dataset: every labelled image must be present
            raise common.manual_data_error(
                self.name, root,
                f"{len(missing)} image(s) named in {label_file.name} not found under images/ or "
                f"images_*/images/, e.g. {', '.join(missing[:5])}",
                _EXPECTED_TREE,
            )  # fmt: skip
        unlabelled = len(images) - len(entries)
        if unlabelled:
            log.warning("%s: %d image(s) without a label row ignored", self.name, unlabelled)
        lists = [root / "train_val_list.txt", root / "test_list.txt"]
        if lists[0].exists() != lists[1].exists():
            raise common.ManualDataError(
                f"{self.name}: found only one of {lists[0].name}, {lists[1].name} in {root}"
            )
        train_val = test = None
        if lists[0].exists():
            train_val, test = (p.read_text().split() for p in lists)
        parts = self._checked(
            lambda: split_entries(
                entries, self.SPLIT_SEED, train_val, test, self.VALIDATION_FRACTION
            )
        )
        return {
            name: self._generate_examples([(e, images[e.image_index]) for e in part])
            for name, part in parts.items()
        }

    def _generate_examples(self, pairs):
        for entry, path in pairs:
            yield entry.image_index, {
                "image": common.grey8_png(path, builder_name=self.name),
                "labels": np.asarray(entry.labels, np.uint8),
                "image_id": entry.image_index,
                "patient_id": entry.patient_id,
                "age": entry.age,
                "sex": entry.sex,
                "view": entry.view,
            }

    def _image_paths(self, root):
        """{file name: path} over images/ and images_*/images/ (a name in two places is an error)."""
        paths = {}
        for pattern in ("images/*.png", "images_*/images/*.png"):
            for path in root.glob(pattern):
                if path.name in paths:
                    raise common.ManualDataError(
                        f"{self.name}: {path.name} found twice: {paths[path.name]} and {path}"
                    )
                paths[path.name] = path
        return paths

    def _checked(self, fn):
        """Run a label/split parsing step; its ValueError becomes a ManualDataError."""
        try:
            return fn()
        except ValueError as err:
            raise common.ManualDataError(f"{self.name}: {err}") from err
