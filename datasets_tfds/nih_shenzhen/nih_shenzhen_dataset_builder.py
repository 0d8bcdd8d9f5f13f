"""NIH Shenzhen chest X-ray set (tuberculosis classification, benchmark task TXC)."""

from __future__ import annotations

import re

import numpy as np
import tensorflow_datasets as tfds

from datasets_tfds import common

_NAME_RE = re.compile(r"^CHNCXR_(\d{4})_([01])$")

_EXPECTED_TREE = """\
ChinaSet_AllFiles/            (optional level: a bare CXR_png/ folder is accepted too)
  CXR_png/
    CHNCXR_0001_0.png         label = last digit: 0 normal, 1 tuberculosis
    ...
    CHNCXR_0662_1.png
"""


class TfmedbenchNihShenzhen(tfds.core.GeneratorBasedBuilder):
    """Shenzhen Hospital CXR set: 662 frontal chest X-rays, 336 normal / 326 tuberculosis."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: seeded 70/10/20 split stratified by label."}
    # The split is part of the dataset version: changing the seed or fractions needs a new VERSION.
    SPLIT_SEED = 2021
    SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download ChinaSet_AllFiles.zip from the NIH/NLM page
https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets , unzip it
and pass the folder holding ChinaSet_AllFiles/ (or ChinaSet_AllFiles/ itself, or a folder
holding CXR_png/, or CXR_png/ itself) as --manual_dir. Expected tree:
{_EXPECTED_TREE}"""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # Sources are mostly 8-bit grey PNG; RGB/RGBA/16-bit files are converted
                    # to 8-bit grey (common.to_grey8) so every example has the same format.
                    "image": tfds.features.Image(
                        shape=(None, None, 1), dtype=np.uint8, encoding_format="png"
                    ),
                    "label": tfds.features.ClassLabel(names=["normal", "tuberculosis"]),
                    "image_id": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html",
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
        by_name = {path.stem: path for path in paths}
        parts = common.split_fractions(
            [path.stem for path in paths], self.SPLIT_FRACTIONS, self.SPLIT_SEED, strata=labels
        )
        return {name: self._generate_examples([by_name[s] for s in stems])
                for name, stems in parts.items()}  # fmt: skip

    def _generate_examples(self, paths):
        for path in paths:
            yield path.stem, {
                "image": common.grey8_png(path, builder_name=self.name),
                "label": self._label_of(path),
                "image_id": path.stem,
            }

    def _label_of(self, path):
        match = _NAME_RE.match(path.stem)
        if not match:
            raise common.ManualDataError(
                f"{self.name}: unexpected file name {path} (expected CHNCXR_####_0.png or "
                f"CHNCXR_####_1.png; the last digit is the label)"
            )
        return int(match.group(2))
