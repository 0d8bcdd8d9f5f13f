"""SIIM-ACR pneumothorax segmentation chest X-rays (benchmark task PXS)."""

from __future__ import annotations

import csv
import functools
import io
import logging

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from datasets_tfds import common, dicom, parallel, resized, rle
from datasets_tfds.local_build import LocalBuild

log = logging.getLogger(__name__)

_EXPECTED_TREE = """\
siim-acr-pneumothorax/          (optional level: its parent may be the manual dir)
  train-rle.csv                 ImageId, EncodedPixels (stage_2_train.csv is accepted too)
  dicom-images-train/
    <StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
    ...                         (a flat folder of <SOPInstanceUID>.dcm works too)
  dicom-images-test/            optional: stage 1's test images, labelled by the stage-2 CSV
    <StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
"""
_CSV_NAMES = ("train-rle.csv", "stage_2_train.csv")
_IMAGE_DIRS = ("dicom-images-train", "dicom-images-test")
# The challenge published its training labels twice: (images, CSV rows) of each release.
# Stage 1's train-rle.csv labels 10,675 training images; stage 2's CSV adds labels for stage 1's
# 1,372 test images (measured on the stage-2 file: 12,047 images, 12,954 rows). Both headers read
# "ImageId, EncodedPixels" (the stage-2 copy measured here has the leading space too), so only
# the counts tell the releases apart.
RELEASES = {"stage1": (10_675, 11_582), "stage2": (12_047, 12_954)}
# The paper's "10K chest X-ray images" are stage 1's 10,675.
PAPER_RELEASE = "stage1"


def detect_release(rles):
    """The release of {ImageId: [RLE]}: "stage1", "stage2" or "unknown" (subset, edited file)."""
    counts = (len(rles), sum(len(codes) for codes in rles.values()))
    return next((name for name, known in RELEASES.items() if counts == known), "unknown")


class SiimConfig(resized.ImageConfig):
    """Chooses the stored image dtype (a feature dtype is fixed per dataset, not per image) and,
    with `shorter_side`, a reduced resolution (datasets_tfds.resized; uint8 only)."""

    def __init__(self, *, image_dtype, **kwargs):
        super().__init__(**kwargs)
        self.image_dtype = image_dtype


def example(item, *, builder_name, dtype, side):
    """[(key, example)] of one (image id, DICOM path, RLE rows) work item."""
    image_id, path, image_rles = item
    dataset, pixels = dicom.read(path, builder_name=builder_name)
    try:
        image = dicom.radiograph_grey(dataset, pixels, dtype)
    except ValueError as err:
        hint = " (build the `uint16` config)" if dtype == np.uint8 else ""
        raise common.ManualDataError(f"{builder_name}: {path}: {err}{hint}") from err
    height, width = pixels.shape
    try:
        mask = rle.decode_union(image_rles, height, width)
    except ValueError as err:
        raise common.ManualDataError(
            f"{builder_name}: bad EncodedPixels for {image_id} ({height}x{width}): {err}"
        ) from err
    return [(image_id, {
        # Reduced configs: shrunk JPEG (uint8 only: `_UINT8`'s dtype).
        "image": resized.stored_image(image, side, common.encode_png),
        "mask": resized.stored_mask(mask[..., None], side, common.encode_png),
        "image_id": image_id,
        "has_pneumothorax": bool(mask.any()),  # of the full-resolution mask
    })]  # fmt: skip


_UINT8 = SiimConfig(
    name="uint8",
    description="8-bit images, as every DICOM of the challenge is; deeper files fail.",
    image_dtype=np.uint8,
)


class TfmedbenchSiimPneumothorax(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """SIIM-ACR Pneumothorax Segmentation: chest X-ray DICOMs with RLE pneumothorax masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: seeded 80/20 split by image stratified by has_pneumothorax, "
        "then 10% of train as validation."
    }
    # uint8 (default), uint16, then the reduced 8-bit configs 512 and 256.
    BUILDER_CONFIGS = [
        _UINT8,
        SiimConfig(
            name="uint16",
            description="16-bit images, for re-exported sources with BitsAllocated > 8.",
            image_dtype=np.uint16,
        ),
        *(resized.reduced(_UINT8, side, name=str(side)) for side in resized.SIDES),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "uint8"
    # The split is part of the dataset version: changing seed or fractions needs a new VERSION.
    SPLIT_SEED = 2021
    TEST_FRACTIONS = {"train": 0.8, "test": 0.2}
    VALIDATION_FRACTIONS = {"train": 0.9, "validation": 0.1}  # applied to the 80% above
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the SIIM-ACR Pneumothorax Segmentation training data (DICOMs and train-rle.csv, e.g.
from the Kaggle competition siim-acr-pneumothorax-segmentation or its public mirrors) and pass
the folder holding them (or the folder above it) as --manual_dir. Expected tree:
{_EXPECTED_TREE}
DICOMs without a CSV row are skipped and counted in the log; a CSV row without a DICOM stops
the build with an error naming it. Both releases of the CSV are accepted: stage 1 (10,675
images, the one the paper used) and stage 2 (12,047); the build records which in its metadata."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # Stored pixels, lossless, no windowing; MONOCHROME1 inverted to MONOCHROME2.
                    # Reduced configs: uint8 JPEG (datasets_tfds.resized).
                    "image": resized.image_feature(
                        self.builder_config, self.builder_config.image_dtype
                    ),
                    # Union of all the image's RLE regions: 1 = pneumothorax.
                    "mask": tfds.features.Image(
                        shape=(None, None, 1), dtype=np.uint8, encoding_format="png"
                    ),
                    "image_id": tfds.features.Text(),  # SOPInstanceUID = CSV ImageId
                    "has_pneumothorax": tfds.features.Scalar(dtype=np.bool_),
                }
            ),
            supervised_keys=("image", "mask"),
            homepage="https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation",
            metadata=tfds.core.MetadataDict(),  # which release of the CSV the build read
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("", "siim-acr-pneumothorax", "siim-acr-pneumothorax-segmentation"),
            required=(_CSV_NAMES, "dicom-images-train"),
            expected_tree=_EXPECTED_TREE,
        )
        csv_path = next(root / name for name in _CSV_NAMES if (root / name).exists())
        rles = read_rle_csv(csv_path, builder_name=self.name)
        self._record_release(csv_path, rles)
        files = self._dicom_files(root)
        missing = sorted(set(rles) - set(files))
        if missing:
            shown = "\n".join(f"    {image_id}.dcm" for image_id in missing[:10])
            more = f"\n    ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise common.manual_data_error(
                self.name,
                root,
                f"{len(missing)} image(s) named in {csv_path} have no DICOM under "
                f"{' or '.join(_IMAGE_DIRS)}:\n{shown}{more}",
                _EXPECTED_TREE,
            )
        unlabelled = sorted(set(files) - set(rles))
        if unlabelled:
            # The challenge ships some training DICOMs without a CSV row (and stage-1 test
            # images, if present, that this CSV does not label): say how many are left out.
            log.warning(
                "%s: skipping %d DICOM file(s) that have no row in %s, e.g. %s",
                self.name, len(unlabelled), csv_path.name,
                ", ".join(str(files[i]) for i in unlabelled[:3]),
            )  # fmt: skip
        ids = sorted(rles)
        positive = [any(not rle.is_empty(r) for r in rles[i]) for i in ids]
        parts = split_train_validation_test(
            ids, positive, self.TEST_FRACTIONS, self.VALIDATION_FRACTIONS, self.SPLIT_SEED
        )
        empty = [name for name, part in parts.items() if not part]
        if empty:  # TFDS would fail later with "No examples were yielded"
            raise common.ManualDataError(
                f"{self.name}: only {len(ids)} labelled images in {csv_path}: the seeded split "
                f"leaves {', '.join(empty)} empty"
            )
        return {
            name: self._generate_examples([(i, files[i], rles[i]) for i in part])
            for name, part in parts.items()
        }

    def _generate_examples(self, items):
        make = functools.partial(example, builder_name=self.name,
                                 dtype=self.builder_config.image_dtype,
                                 side=self.builder_config.shorter_side)  # fmt: skip
        return parallel.examples(
            self, [(i, str(path), tuple(codes)) for i, path, codes in items], make
        )

    def _record_release(self, csv_path, rles):
        """Store in the dataset's metadata which release the CSV is (see `detect_release`)."""
        release = detect_release(rles)
        self.info.metadata.update({
            "release": release, "csv_file": csv_path.name, "csv_images": len(rles),
            "csv_rows": sum(len(codes) for codes in rles.values()),
            "paper_release": PAPER_RELEASE,
        })  # fmt: skip
        log.info("%s: %s is the %s release (%d images); the paper used %s", self.name,
                 csv_path.name, release, len(rles), PAPER_RELEASE)  # fmt: skip

    def _dicom_files(self, root):
        """{SOPInstanceUID (file stem): path} of every .dcm under the image folders."""
        files = {}
        for folder in _IMAGE_DIRS:
            top = root / folder
            if not top.is_dir():
                continue
            # tf.io.gfile.walk lists local and gs:// trees alike, at any depth (nested or flat).
            for directory, _, names in tf.io.gfile.walk(str(top)):
                for name in names:
                    if not name.lower().endswith(".dcm"):
                        continue
                    path = epath.Path(directory) / name
                    if path.stem in files:
                        raise common.ManualDataError(
                            f"{self.name}: two DICOMs for image {path.stem}: "
                            f"{files[path.stem]} and {path}"
                        )
                    files[path.stem] = path
        if not files:
            raise common.manual_data_error(
                self.name, root, "no .dcm file under dicom-images-train/", _EXPECTED_TREE
            )
        return files


def read_rle_csv(path, *, builder_name="tfmedbench_siim_pneumothorax"):
    """train-rle.csv -> {ImageId: [EncodedPixels, ...]} (several rows per image = regions)."""
    text = epath.Path(path).read_text()
    return parse_rle_csv(io.StringIO(text), source=path, builder_name=builder_name)


def parse_rle_csv(lines, *, source="train-rle.csv", builder_name="tfmedbench_siim_pneumothorax"):
    """Parse the CSV text (an iterable of lines); header names may carry a leading space.

    Every EncodedPixels value is validated here with exact integers (`rle.runs`, against the
    largest image `dicom.read` accepts), so a malformed or overflowing row fails naming its line
    before any image is decoded; `rle.decode` checks it again against the image's real size.
    """
    reader = csv.reader(lines)
    rles = {}
    try:
        header = [name.strip() for name in next(reader, [])]
        if header[:2] != ["ImageId", "EncodedPixels"]:
            raise common.ManualDataError(
                f"{builder_name}: {source} must start with the header 'ImageId, EncodedPixels', "
                f"got {header}"
            )
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2 or not row[0].strip():
                raise common.ManualDataError(
                    f"{builder_name}: {source} line {line_number}: expected "
                    f"'ImageId,EncodedPixels', got {row[:3]}"
                )
            _check_rle(row, line_number, source, builder_name)
            rles.setdefault(row[0].strip(), []).append(row[1])
    except csv.Error as err:
        raise common.ManualDataError(
            f"{builder_name}: {source} line {reader.line_num}: unreadable CSV ({err})"
        ) from None
    if not rles:
        raise common.ManualDataError(f"{builder_name}: {source} has no data rows")
    return rles


def _check_rle(row, line_number, source, builder_name):
    if rle.is_empty(row[1]):
        return
    try:
        rle.runs(row[1], dicom.MAX_ROWS, dicom.MAX_COLUMNS)
    except ValueError as err:
        raise common.ManualDataError(
            f"{builder_name}: {source} line {line_number} (ImageId {row[0].strip()[:80]}): {err}"
        ) from None


def split_train_validation_test(ids, strata, test_fractions, validation_fractions, seed):
    """Seeded 80/20 train/test split of `ids`, then 10% of train as validation, both stratified.

    The second cut uses seed + 1 so it is independent of the first; both are exact-count
    splits from datasets_tfds.common.split_fractions, which depend only on the ids and seed.
    """
    first = common.split_fractions(ids, test_fractions, seed, strata=strata)
    stratum = dict(zip(ids, strata))
    train = first["train"]
    second = common.split_fractions(
        train, validation_fractions, seed + 1, strata=[stratum[i] for i in train]
    )
    return {"train": second["train"], "validation": second["validation"], "test": first["test"]}
