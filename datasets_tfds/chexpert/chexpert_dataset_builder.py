"""Stanford CheXpert (benchmark task DXC5): chest X-rays with 4-state labels for 14 observations."""

from __future__ import annotations

import csv
import functools
import re
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from datasets_tfds import common, parallel, resized
from datasets_tfds.local_build import LocalBuild

# The 14 observations in the order of the CSV columns (and of the `labels` feature).
LABELS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)  # fmt: skip

# Raw label encoding stored per observation (the adapter applies the uncertainty policy).
POSITIVE, NEGATIVE, UNCERTAIN, BLANK = 1, 0, -1, -2
_CELL = {"1.0": POSITIVE, "1": POSITIVE, "0.0": NEGATIVE, "0": NEGATIVE, "-1.0": UNCERTAIN,
         "-1": UNCERTAIN, "": BLANK}  # fmt: skip
_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA") + LABELS
_PATH_RE = re.compile(r"^[^/]+/(train|valid)/patient(\d+)/(study\d+)/([^/]+\.jpg)$")

_EXPECTED_TREE = """\
CheXpert-v1.0-small/               or CheXpert-v1.0/ (full resolution); any name works
  train.csv                        Path,Sex,Age,Frontal/Lateral,AP/PA,<14 observations>
  valid.csv
  train/patient00001/study1/view1_frontal.jpg ...
  valid/patient64541/study1/view1_frontal.jpg ...
"""


class Entry(NamedTuple):
    """One row of CheXpert's train.csv / valid.csv."""

    image_id: str  # the CSV Path without its first folder: "train/patient00001/study1/view1_frontal.jpg"
    patient_id: int
    sex: str
    age: int
    frontal: bool
    ap_pa: str  # "AP", "PA", "LL", "RL" or "" (lateral views have none)
    labels: tuple  # 14 ints in {1, 0, -1, -2}, LABELS order


def parse_chexpert_csv(lines, source="train.csv"):
    """Parse CheXpert train.csv / valid.csv rows (an iterable of text lines) into Entries.

    Cells: 1.0 positive -> 1, 0.0 negative -> 0, -1.0 uncertain -> -1, blank (unmentioned) -> -2.
    Any other cell, an unexpected header or path raises ValueError naming the line.
    """
    reader = csv.reader(lines)
    header = tuple(next(reader, ()))
    if header != _COLUMNS:
        raise ValueError(f"{source}: unexpected header {list(header)}; expected {list(_COLUMNS)}")
    entries = []
    for line, row in enumerate(reader, start=2):
        if len(row) != len(_COLUMNS):
            raise ValueError(f"{source} line {line}: {len(row)} fields, expected {len(_COLUMNS)}")
        path, sex, age, view, ap_pa = row[:5]
        match = _PATH_RE.match(path)
        if not match:
            raise ValueError(f"{source} line {line}: unexpected Path {path!r}")
        if view not in ("Frontal", "Lateral"):
            raise ValueError(f"{source} line {line}: Frontal/Lateral is {view!r}")
        try:
            labels = tuple(_CELL[cell.strip()] for cell in row[5:])
            age = int(age)
        except (KeyError, ValueError) as err:
            raise ValueError(f"{source} line {line}: bad value {err}") from None
        entries.append(
            Entry(path.split("/", 1)[1], int(match.group(2)), sex, age, view == "Frontal",
                  ap_pa, labels)
        )  # fmt: skip
    return entries


def split_train(entries, seed, validation_fraction):
    """{"train", "validation"}: a seeded patient-level split of train.csv's entries."""
    parts = common.split_by_group(
        [e.image_id for e in entries], [e.patient_id for e in entries],
        {"train": 1 - validation_fraction, "validation": validation_fraction}, seed,
    )  # fmt: skip
    return {name: [e for e in entries if e.image_id in ids] for name, ids in parts.items()}


def example(entry, *, root, builder_name, side):
    """[(key, example)] of one Entry (a work item of `parallel.examples`)."""
    return [(entry.image_id, {
        "image": resized.grey8_file(epath.Path(root) / entry.image_id, side,
                                    builder_name=builder_name),
        "labels": np.asarray(entry.labels, np.int8),
        "frontal": entry.frontal,
        "ap_pa": entry.ap_pa,
        "sex": entry.sex,
        "age": entry.age,
        "patient_id": entry.patient_id,
        "image_id": entry.image_id,
    })]  # fmt: skip


_DEFAULT = resized.ImageConfig(
    name="default",
    description="The images as distributed (small or full CheXpert), lossless.",
)


class TfmedbenchChexpert(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """CheXpert v1.0 (small or full) with raw 4-state labels; test = official validation set."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: raw labels; test = valid.csv; validation = seeded 5% of "
        "train patients."
    }
    # default (as distributed), then 512 and 256 (datasets_tfds.resized; CheXpert-v1.0-small's
    # images, 320 px on the shorter side, are only re-encoded by 512).
    BUILDER_CONFIGS = [_DEFAULT] + [resized.reduced(_DEFAULT, side) for side in resized.SIDES]
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    SPLIT_SEED = 2021  # part of the dataset version
    VALIDATION_FRACTION = 0.05
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
tfmedbench_chexpert: request CheXpert-v1.0-small (or CheXpert-v1.0) from
https://stanfordmlgroup.github.io/competitions/chexpert/ , unzip it and pass the folder holding
it (or the dataset folder itself) as --manual_dir. Expected tree:
{_EXPECTED_TREE}"""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # JPEG sources decoded and stored as lossless grey PNG (no second JPEG loss);
                    # the reduced configs store JPEG q95 (datasets_tfds.resized).
                    "image": resized.image_feature(self.builder_config),
                    # LABELS order; 1 positive, 0 negative, -1 uncertain, -2 blank.
                    "labels": tfds.features.Tensor(shape=(14,), dtype=np.int8),
                    "frontal": tfds.features.Scalar(dtype=np.bool_),
                    "ap_pa": tfds.features.Text(),
                    "sex": tfds.features.Text(),
                    "age": tfds.features.Scalar(dtype=np.int32),
                    "patient_id": tfds.features.Scalar(dtype=np.int32),
                    "image_id": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "labels"),
            homepage="https://stanfordmlgroup.github.io/competitions/chexpert/",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("", "CheXpert-v1.0-small", "CheXpert-v1.0"),
            required=("train.csv", "valid.csv", "train", "valid"),
            expected_tree=_EXPECTED_TREE,
        )
        train = self._parse(root / "train.csv")
        test = self._parse(root / "valid.csv")
        # Rows point to files relative to the folder holding the dataset; checking them all up
        # front turns a partial download into one clear error instead of a smaller dataset.
        common.require_paths(
            [root / e.image_id for e in train + test],
            builder_name=self.name, what="image (named in train.csv/valid.csv)",
            expected_tree=_EXPECTED_TREE, manual_dir=root,
        )  # fmt: skip
        parts = split_train(train, self.SPLIT_SEED, self.VALIDATION_FRACTION)
        parts["test"] = test
        return {name: self._generate_examples(root, part) for name, part in parts.items()}

    def _generate_examples(self, root, entries):
        make = functools.partial(example, root=str(root), builder_name=self.name,
                                 side=self.builder_config.shorter_side)  # fmt: skip
        return parallel.examples(self, entries, make)

    def _parse(self, path):
        with path.open("r") as lines:
            try:
                return parse_chexpert_csv(lines, str(path))
            except ValueError as err:
                raise common.ManualDataError(f"{self.name}: {err}") from err
