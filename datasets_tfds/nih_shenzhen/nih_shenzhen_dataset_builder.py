"""NIH Shenzhen chest X-ray set (tuberculosis classification, benchmark task TXC)."""

from __future__ import annotations

import functools
import logging
import re

import tensorflow_datasets as tfds
from etils import epath

from datasets_tfds import common, parallel, resized, split_lists
from datasets_tfds.local_build import LocalBuild

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^CHNCXR_(\d{4})_([01])$")
_LIST_LINE_RE = re.compile(r"^(CHNCXR_\d{4}_[01]\.png)\s*,\s*([01])$")
PAPER_LISTS = {
    "train": "ShenzenCXR_train_data.txt",
    "validation": "ShenzenCXR_valid_data.txt",
    "test": "ShenzenCXR_test_data.txt",
}
# SHA-256 of the lists published with the paper (463 / 65 / 134 lines).
PAPER_SHA256 = {
    "ShenzenCXR_train_data.txt": "77ac16bc43b60edcc8a21ac95bd98804562836e66245fe7cad15ae8faa653c73",
    "ShenzenCXR_valid_data.txt": "b8e0ea0e25901f9ff57c09fa449e82019d452a64050317e87088cbf104bdfc23",
    "ShenzenCXR_test_data.txt": "3bff5fa60628785a2c690a8c4e9983dd46a5b03bd18d23f8fef9863779065145",
}

_EXPECTED_TREE = """\
ChinaSet_AllFiles/            (optional level: a bare CXR_png/ folder is accepted too)
  CXR_png/
    CHNCXR_0001_0.png         label = last digit: 0 normal, 1 tuberculosis
    ...
    CHNCXR_0662_1.png
"""


def parse_list_line(line):
    """`CHNCXR_0402_1.png,1` -> ("CHNCXR_0402_1.png", (1,)): a line of the paper's lists."""
    match = _LIST_LINE_RE.match(line)
    if not match:
        raise ValueError("expected 'CHNCXR_####_L.png,L' (L = 0 normal, 1 tuberculosis)")
    return match.group(1), (int(match.group(2)),)


def label_of(path, builder_name):
    """The label digit of a Shenzhen file name (0 normal, 1 tuberculosis)."""
    match = _NAME_RE.match(path.stem)
    if not match:
        raise common.ManualDataError(
            f"{builder_name}: unexpected file name {path} (expected CHNCXR_####_0.png or "
            f"CHNCXR_####_1.png; the last digit is the label)"
        )
    return int(match.group(2))


def example(path, *, builder_name, side):
    """[(key, example)] of one image file (a work item of `parallel.examples`)."""
    path = epath.Path(path)
    return [(path.stem, {
        "image": resized.grey8_file(path, side, builder_name=builder_name),
        "label": label_of(path, builder_name),
        "image_id": path.stem,
    })]  # fmt: skip


_DEFAULT = split_lists.SplitConfig(
    name="default",
    description="Seeded 70/10/20 split stratified by label (SPLIT_SEED 2021).",
)
_PAPER_SPLIT = split_lists.SplitConfig(
    name="paper_split",
    description="The paper's split (463/65/134): ShenzenCXR_{train,valid,test}_data.txt "
    "of the original code, read from the manual dir.",
    lists=PAPER_LISTS,
    sha256=PAPER_SHA256,
)


class TfmedbenchNihShenzhen(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """Shenzhen Hospital CXR set: 662 frontal chest X-rays, 336 normal / 326 tuberculosis."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: seeded 70/10/20 split stratified by label."}
    # Native resolution (default, paper_split), then the reduced ones: 512, 256,
    # paper_split_512, paper_split_256 (datasets_tfds.resized).
    BUILDER_CONFIGS = [_DEFAULT, _PAPER_SPLIT] + [
        resized.reduced(config, side) for config in (_DEFAULT, _PAPER_SPLIT)
        for side in resized.SIDES
    ]  # fmt: skip
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    # The split is part of the dataset version: changing the seed or fractions needs a new VERSION.
    SPLIT_SEED = 2021
    SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download ChinaSet_AllFiles.zip from the NIH/NLM page
https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets , unzip it
and pass the folder holding ChinaSet_AllFiles/ (or ChinaSet_AllFiles/ itself, or a folder
holding CXR_png/, or CXR_png/ itself) as --manual_dir. Expected tree:
{_EXPECTED_TREE}
Config `paper_split` (the paper's 463/65/134 split) also reads ShenzenCXR_train_data.txt,
ShenzenCXR_valid_data.txt and ShenzenCXR_test_data.txt from {split_lists.SOURCE} ;
put them in the manual dir (or in ChinaSet_AllFiles/ or CXR_png/)."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # Sources are mostly 8-bit grey PNG; RGB/RGBA/16-bit files are converted
                    # to 8-bit grey (common.to_grey8) so every example has the same format.
                    # Reduced configs: JPEG (datasets_tfds.resized).
                    "image": resized.image_feature(self.builder_config),
                    "label": tfds.features.ClassLabel(names=["normal", "tuberculosis"]),
                    "image_id": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html",
            metadata=tfds.core.MetadataDict(),  # paper_split: which lists the build read
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        image_dir = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("ChinaSet_AllFiles/CXR_png", "CXR_png", ""),
            required=("CHNCXR_*.png",),
            expected_tree=_EXPECTED_TREE,
        )
        paths = common.list_files(image_dir, "CHNCXR_*.png")
        labels = [self._label_of(path) for path in paths]
        if self.builder_config.lists:
            parts = self._paper_split(dl_manager, image_dir, paths, labels)
        else:
            parts = common.split_fractions(
                [p.stem for p in paths], self.SPLIT_FRACTIONS, self.SPLIT_SEED, strata=labels
            )
        by_stem = {path.stem: path for path in paths}
        return {name: self._generate_examples([by_stem[s] for s in stems])
                for name, stems in parts.items()}  # fmt: skip

    def _paper_split(self, dl_manager, image_dir, paths, labels):
        """{split: [file stem]} from the paper's lists, checked against the files' own labels."""
        manual_dir = common.manual_dir_of(
            dl_manager, builder_name=self.name, expected_tree=_EXPECTED_TREE
        )
        parts, metadata = split_lists.read_checked(
            manual_dir, image_dir, self.builder_config, parse_list_line,
            {path.name: (label,) for path, label in zip(paths, labels)},
            builder_name=self.name, labels_from="the label digit of its file name",
        )  # fmt: skip
        self.info.metadata.update(metadata)
        return {split: [name[: -len(".png")] for name in names] for split, names in parts.items()}

    def _generate_examples(self, paths):
        make = functools.partial(example, builder_name=self.name,
                                 side=self.builder_config.shorter_side)  # fmt: skip
        return parallel.examples(self, [str(p) for p in paths], make)

    def _label_of(self, path):
        return label_of(path, self.name)
