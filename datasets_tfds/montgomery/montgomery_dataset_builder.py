"""NIH Montgomery County chest X-rays with manual lung masks (benchmark task LXS)."""

from __future__ import annotations

import functools
import re

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from datasets_tfds import common, parallel, resized
from datasets_tfds.local_build import LocalBuild

_NAME_RE = re.compile(r"^MCUCXR_(\d{4})_([01])$")

_EXPECTED_TREE = """\
MontgomerySet/                     (optional level: pass it or the folder holding it)
  CXR_png/MCUCXR_0001_0.png ...    label = last digit: 0 normal, 1 tuberculosis
  ManualMask/
    leftMask/MCUCXR_0001_0.png ... lung masks, 0/255 (or 0/1)
    rightMask/MCUCXR_0001_0.png ...
"""


def label_of(path, builder_name):
    """The label digit of a Montgomery file name (0 normal, 1 tuberculosis)."""
    match = _NAME_RE.match(path.stem)
    if not match:
        raise common.ManualDataError(
            f"{builder_name}: unexpected file name {path} (expected MCUCXR_####_0.png or "
            f"MCUCXR_####_1.png; the last digit is the label)"
        )
    return int(match.group(2))


def to_uint8(grey16):
    """uint16 -> uint8 as the input pipeline converts (x / 257 rounded; exact for the 8-bit
    sources, which are stored times 257)."""
    return np.round(grey16.astype(np.float64) / 257.0).astype(np.uint8)


def example(path, *, root, builder_name, side):
    """[(key, example)] of one image (a work item of `parallel.examples`)."""
    path, root = epath.Path(path), epath.Path(root)
    image = common.read_image(path, builder_name=builder_name)
    try:
        image = common.to_grey16(image)
    except ValueError as err:
        raise common.ManualDataError(f"{builder_name}: unsupported image {path}: {err}")
    mask = np.zeros(image.shape, np.uint8)
    for side_name in ("leftMask", "rightMask"):
        mask_path = root / "ManualMask" / side_name / path.name
        half = common.binary_mask(common.read_image(mask_path, builder_name=builder_name))
        common.check_shape(half, image.shape[:2], mask_path, builder_name=builder_name)
        mask |= half
    if side is not None:  # reduced configs: 8-bit, as the pipeline converts it, then shrunk
        image = to_uint8(image)
    return [(path.stem, {
        "image": resized.stored_image(image, side, common.encode_png),
        "mask": resized.stored_mask(mask, side, common.encode_png),
        "image_id": path.stem,
        "label": label_of(path, builder_name),
    })]  # fmt: skip


_DEFAULT = resized.ImageConfig(
    name="default", description="Native resolution, 16-bit lossless (8-bit sources x 257)."
)


class TfmedbenchMontgomery(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """Montgomery County set: 138 frontal CXRs (80 normal, 58 TB) with left/right lung masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: seeded stratified 80/20 split, 10% of train as validation."
    }
    # default (native), then 512 and 256 (datasets_tfds.resized: 8-bit JPEG images).
    BUILDER_CONFIGS = [_DEFAULT] + [resized.reduced(_DEFAULT, side) for side in resized.SIDES]
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    SPLIT_SEED = 2021  # part of the dataset version
    TEST_FRACTION = 0.2
    VALIDATION_FRACTION = 0.1  # of the non-test images
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
tfmedbench_montgomery: download NLM-MontgomeryCXRSet.zip from
https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets , unzip it
and pass the folder holding MontgomerySet/ (or MontgomerySet/ itself) as --manual_dir.
Expected tree:
{_EXPECTED_TREE}"""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # uint16 holds both kinds of sources losslessly: 16-bit PNGs as stored,
                    # 8-bit PNGs times 257 (0..255 -> 0..65535), see common.to_grey16. The
                    # reduced configs store uint8 JPEG (x / 257 rounded, then shrunk).
                    "image": resized.image_feature(self.builder_config, np.uint16),
                    # {0, 1}: leftMask > 0 OR rightMask > 0.
                    "mask": tfds.features.Image(
                        shape=(None, None, 1), dtype=np.uint8, encoding_format="png"
                    ),
                    "image_id": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["normal", "tuberculosis"]),
                }
            ),
            supervised_keys=("image", "mask"),
            homepage="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("MontgomerySet", ""),
            required=("CXR_png/MCUCXR_*.png", "ManualMask/leftMask", "ManualMask/rightMask"),
            expected_tree=_EXPECTED_TREE,
        )
        images = common.list_files(root / "CXR_png", "MCUCXR_*.png")
        labels = [self._label_of(path) for path in images]
        common.require_paths(
            [root / "ManualMask" / side / p.name for p in images
             for side in ("leftMask", "rightMask")],
            builder_name=self.name, what="lung mask", expected_tree=_EXPECTED_TREE,
            manual_dir=root,
        )  # fmt: skip
        by_stem = {path.stem: path for path in images}
        label_by_stem = dict(zip(by_stem, labels))
        outer = common.split_fractions(
            list(by_stem), {"train_val": 1 - self.TEST_FRACTION, "test": self.TEST_FRACTION},
            self.SPLIT_SEED, strata=labels,
        )  # fmt: skip
        inner = common.split_fractions(
            outer["train_val"],
            {"train": 1 - self.VALIDATION_FRACTION, "validation": self.VALIDATION_FRACTION},
            self.SPLIT_SEED, strata=[label_by_stem[s] for s in outer["train_val"]],
        )  # fmt: skip
        parts = {"train": inner["train"], "validation": inner["validation"], "test": outer["test"]}
        return {
            name: self._generate_examples(root, [by_stem[s] for s in stems])
            for name, stems in parts.items()
        }

    def _generate_examples(self, root, paths):
        make = functools.partial(example, root=str(root), builder_name=self.name,
                                 side=self.builder_config.shorter_side)  # fmt: skip
        return parallel.examples(self, [str(p) for p in paths], make)

    def _label_of(self, path):
        return label_of(path, self.name)
