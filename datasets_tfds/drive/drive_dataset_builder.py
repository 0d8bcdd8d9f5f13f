"""DRIVE retinal vessel segmentation (benchmark task VFS)."""

from __future__ import annotations

import functools
import re

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from datasets_tfds import common, parallel
from datasets_tfds.local_build import LocalBuild

HEIGHT, WIDTH = 584, 565  # every DRIVE image: 565 wide x 584 high (PIL reports (565, 584))

_EXPECTED_TREE = """\
DRIVE/
  training/
    images/NN_training.tif          NN = 21..40, RGB 565x584 (W x H)
    1st_manual/NN_manual1.gif       vessel annotation, 0/255
    mask/NN_training_mask.gif       field-of-view mask, 0/255
  test/
    images/NN_test.tif              NN = 01..20
    1st_manual/NN_manual1.gif       ground truth of the test split
    2nd_manual/NN_manual2.gif       (optional, not used: second observer)
    mask/NN_test_mask.gif
"""

_IMAGE_RE = re.compile(r"^(\d+)_(training|test)$")


def example(triplet, *, builder_name):
    """[(key, example)] of one (image, 1st_manual, FOV mask) path triplet (a work item)."""
    image_path, vessel_path, fov_path = (epath.Path(p) for p in triplet)
    image = common.read_image(image_path, builder_name=builder_name)
    if image.mode != "RGB":
        image = image.convert("RGB")
    image = np.asarray(image, dtype=np.uint8)
    vessel = common.binary_mask(common.read_image(vessel_path, builder_name=builder_name))
    fov = common.binary_mask(common.read_image(fov_path, builder_name=builder_name))
    for array, path in ((image, image_path), (vessel, vessel_path), (fov, fov_path)):
        common.check_shape(array, (HEIGHT, WIDTH), path, builder_name=builder_name)
    return [(image_path.stem, {
        "image": image,
        "vessel_mask": vessel,
        "fov_mask": fov,
        "image_id": image_path.stem,
    })]  # fmt: skip


class TfmedbenchDrive(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """DRIVE: 40 colour fundus images with manual vessel annotations and FOV masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: official 20 test images; 4 seeded training images as validation."
    }
    # The split is part of the dataset version: changing it needs a new VERSION.
    SPLIT_SEED = 2021
    NUM_VALIDATION = 4
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
tfmedbench_drive: register and download DRIVE from https://drive.grand-challenge.org/ , unzip
training.zip and test.zip into a folder DRIVE/ and pass the folder holding DRIVE/ (or DRIVE/
itself) as --manual_dir. Expected tree:
{_EXPECTED_TREE}"""

    def _info(self) -> tfds.core.DatasetInfo:
        mask = tfds.features.Image(shape=(HEIGHT, WIDTH, 1), dtype=np.uint8, encoding_format="png")
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(HEIGHT, WIDTH, 3), dtype=np.uint8, encoding_format="png"
                    ),
                    "vessel_mask": mask,  # {0, 1}: 1st_manual > 0
                    "fov_mask": mask,  # {0, 1}: field of view > 0
                    "image_id": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "vessel_mask"),
            homepage="https://drive.grand-challenge.org/",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("DRIVE", ""),
            required=(
                "training/images/*_training.tif", "training/1st_manual", "training/mask",
                "test/images/*_test.tif", "test/1st_manual", "test/mask",
            ),
            expected_tree=_EXPECTED_TREE,
        )  # fmt: skip
        training = self._triplets(root, "training")
        if len(training) <= self.NUM_VALIDATION:
            raise common.ManualDataError(
                f"{self.name}: {root}/training holds {len(training)} images; need more than "
                f"{self.NUM_VALIDATION} (the validation slice)"
            )
        fraction = self.NUM_VALIDATION / len(training)
        parts = common.split_fractions(
            sorted(training), {"train": 1 - fraction, "validation": fraction}, self.SPLIT_SEED
        )
        test = self._triplets(root, "test")
        return {
            "train": self._generate_examples([training[k] for k in parts["train"]]),
            "validation": self._generate_examples([training[k] for k in parts["validation"]]),
            "test": self._generate_examples([test[k] for k in sorted(test)]),
        }

    def _generate_examples(self, triplets):
        # No reduced configs: VFS augments the native 565 x 584 images (SA-UNet) and its 40
        # images are decoded once per run (cached), so a smaller copy would save nothing.
        make = functools.partial(example, builder_name=self.name)
        return parallel.examples(self, [tuple(str(p) for p in t) for t in triplets], make)

    def _triplets(self, root, split):
        """{image stem: (image, 1st_manual, FOV mask)} of one official split; all files must exist."""
        folder = root / split
        out = {}
        for image_path in common.list_files(folder / "images", f"*_{split}.tif"):
            match = _IMAGE_RE.match(image_path.stem)
            if not match:
                raise common.ManualDataError(f"{self.name}: unexpected file name {image_path}")
            number = match.group(1)
            out[image_path.stem] = (
                image_path,
                folder / "1st_manual" / f"{number}_manual1.gif",
                folder / "mask" / f"{number}_{split}_mask.gif",
            )
        common.require_paths(
            [p for triplet in out.values() for p in triplet[1:]],
            builder_name=self.name,
            what=f"{split} annotation/mask",
            expected_tree=_EXPECTED_TREE,
            manual_dir=root,
        )
        return out
