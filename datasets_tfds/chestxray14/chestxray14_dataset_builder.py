"""NIH ChestX-ray14 (benchmark task DXC14): 112,120 frontal CXRs, 14 multi-hot findings."""

from __future__ import annotations

import csv
import functools
import logging
import re
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from datasets_tfds import common, parallel, resized, split_lists
from datasets_tfds.local_build import LocalBuild

log = logging.getLogger(__name__)

# The 14 findings, in the order of the `labels` feature (and of the paper's split lists).
LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)  # fmt: skip
LABEL_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")  # first found wins
NO_FINDING = "No Finding"
_LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
_IMAGE_NAME_RE = re.compile(r"^\d{8}_\d{3}\.png$")
PAPER_LISTS = {
    "train": "Xray14_train_official.txt",
    "validation": "Xray14_val_official.txt",
    "test": "Xray14_test_official.txt",
}
# SHA-256 of the lists published with the paper (75,312 / 11,212 / 25,596 lines).
PAPER_SHA256 = {
    "Xray14_train_official.txt": "60cc170f312a2301e5c9a8860fe36437e0ee632b4da8a890b855a669fe3069f4",
    "Xray14_val_official.txt": "4ea551a628d287bbe19f474408975acfbee98437245956531101cbdab5c4c090",
    "Xray14_test_official.txt": "7fa6a1865c16b416ed0cd96954fbbb3945f8ea20c39c22521e068859cda4c7cf",
}

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
    labels: tuple  # 14 ints in {0, 1}, order of LABELS
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
        labels = [0] * len(LABELS)
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


def parse_list_line(line):
    """`00000010_000.png 0 0 0 1 0 0 0 0 0 0 0 0 0 0` -> (name, 14 labels in LABELS order)."""
    fields = line.split()
    if (len(fields) != 1 + len(LABELS) or not _IMAGE_NAME_RE.match(fields[0])
            or any(f not in ("0", "1") for f in fields[1:])):  # fmt: skip
        raise ValueError("expected '<########_###.png>' and 14 labels 0/1, separated by spaces")
    return fields[0], tuple(int(f) for f in fields[1:])


def example(item, *, builder_name, side):
    """[(key, example)] of one (Entry, image path) work item (see `parallel.examples`)."""
    entry, path = item
    return [(entry.image_index, {
        "image": resized.grey8_file(path, side, builder_name=builder_name),
        "labels": np.asarray(entry.labels, np.uint8),
        "image_id": entry.image_index,
        "patient_id": entry.patient_id,
        "age": entry.age,
        "sex": entry.sex,
        "view": entry.view,
    })]  # fmt: skip


_DEFAULT = split_lists.SplitConfig(
    name="default",
    description="Official test list (or a seeded patient-level 80/20 without it); "
    "validation = seeded 10% of the train_val patients.",
)
_PAPER_SPLIT = split_lists.SplitConfig(
    name="paper_split",
    description="The paper's split (75,312/11,212/25,596): Xray14_{train,val,test}_"
    "official.txt of the original code, read from the manual dir.",
    lists=PAPER_LISTS,
    sha256=PAPER_SHA256,
)


class TfmedbenchChestxray14(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """NIH ChestX-ray14 with patient-disjoint train/validation/test splits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: official test list; validation = seeded 10% of train_val "
        "patients."
    }
    # Native resolution (default, paper_split), then the reduced ones: 512, 256,
    # paper_split_512, paper_split_256 (datasets_tfds.resized).
    BUILDER_CONFIGS = [_DEFAULT, _PAPER_SPLIT] + [
        resized.reduced(config, side) for config in (_DEFAULT, _PAPER_SPLIT)
        for side in resized.SIDES
    ]  # fmt: skip
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    SPLIT_SEED = 2021  # part of the dataset version
    VALIDATION_FRACTION = 0.1
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
tfmedbench_chestxray14: download the NIH ChestX-ray14 release
(https://nihcc.app.box.com/v/ChestXray-NIHCC): Data_Entry_2017_v2020.csv, train_val_list.txt,
test_list.txt and images_001.tar.gz ... images_012.tar.gz; extract the archives (each holds
images/) and pass the folder as --manual_dir. Expected tree:
{_EXPECTED_TREE}
Config `paper_split` (the paper's split) also reads Xray14_train_official.txt,
Xray14_val_official.txt and Xray14_test_official.txt from {split_lists.SOURCE} ;
put them beside Data_Entry_2017*.csv (or in the manual dir)."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": resized.image_feature(self.builder_config),  # reduced: JPEG
                    # Multi-hot in LABELS order; "No Finding" = zeros.
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
            metadata=tfds.core.MetadataDict(),  # paper_split: which lists the build read
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
        if self.builder_config.lists:
            parts = self._paper_split(dl_manager, root, entries, label_file)
        else:
            parts = self._official_or_seeded_split(root, entries)
        return {
            name: self._generate_examples([(e, images[e.image_index]) for e in part])
            for name, part in parts.items()
        }

    def _official_or_seeded_split(self, root, entries):
        """{split: [Entry]}: test = test_list.txt if given (else a seeded 20% of patients)."""
        lists = [root / "train_val_list.txt", root / "test_list.txt"]
        if lists[0].exists() != lists[1].exists():
            raise common.ManualDataError(
                f"{self.name}: found only one of {lists[0].name}, {lists[1].name} in {root}"
            )
        train_val = test = None
        if lists[0].exists():
            train_val, test = (p.read_text().split() for p in lists)
        return self._checked(
            lambda: split_entries(
                entries, self.SPLIT_SEED, train_val, test, self.VALIDATION_FRACTION
            )
        )

    def _paper_split(self, dl_manager, root, entries, label_file):
        """{split: [Entry]} from the paper's lists, checked against the label file."""
        manual_dir = common.manual_dir_of(
            dl_manager, builder_name=self.name, expected_tree=_EXPECTED_TREE
        )
        parts, metadata = split_lists.read_checked(
            manual_dir, root, self.builder_config, parse_list_line,
            {e.image_index: e.labels for e in entries},
            builder_name=self.name, labels_from=label_file.name,
        )  # fmt: skip
        self.info.metadata.update(metadata)
        by_name = {e.image_index: e for e in entries}
        return {split: [by_name[name] for name in names] for split, names in parts.items()}

    def _generate_examples(self, pairs):
        make = functools.partial(example, builder_name=self.name,
                                 side=self.builder_config.shorter_side)  # fmt: skip
        return parallel.examples(self, [(entry, str(path)) for entry, path in pairs], make)

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
