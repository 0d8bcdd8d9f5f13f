"""The reduced-resolution configs (`<builder>/512`, `/256`) against the full-resolution ones.

Every builder with reduced configs is built twice from one generated tree (images larger than
the reduced size, not square): the reduced build must hold the same examples in the same splits,
each image the JPEG of the full-resolution image shrunk by `resized.shrink` (exactly), within
the documented tolerance of the uncompressed shrink, and each mask the nearest-neighbour shrink
of the full-resolution mask (exactly).
"""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from datasets_tfds import resized, testing
from datasets_tfds.chestxray14 import chestxray14_dataset_builder as chestxray14
from datasets_tfds.chestxray14 import fake_data as chestxray14_fake
from datasets_tfds.chexpert import chexpert_dataset_builder as chexpert
from datasets_tfds.chexpert import fake_data as chexpert_fake
from datasets_tfds.montgomery import fake_data as montgomery_fake
from datasets_tfds.montgomery import montgomery_dataset_builder as montgomery
from datasets_tfds.nih_shenzhen import fake_data as shenzhen_fake
from datasets_tfds.nih_shenzhen import nih_shenzhen_dataset_builder as shenzhen

# Documented tolerance (datasets_tfds/README.md, resized.py): the JPEG q95 of a shrunk
# radiograph differs from the uncompressed shrink by <= 2 grey levels on average and <= 16 at
# any pixel. Measured here on the generated chest X-rays at 600 x 540 (pixel noise of 7.7 grey
# levels, noisier than real radiographs): mean 1.47-1.49, max 11; real DRIVE images (green
# channel) 0.63 / 7 (benchmarks/RESULTS.md).
MEAN_TOLERANCE, MAX_TOLERANCE = 2.0, 16
SIZE = (300, 270)  # rows x columns: larger than 256, not square


def _dicom_builders():
    pytest.importorskip("pydicom", reason="pydicom (tfmedbench[dicom]) writes the DICOMs")
    from datasets_tfds.rsna_pe import fake_data as rsna_fake
    from datasets_tfds.rsna_pe import rsna_pe_dataset_builder as rsna
    from datasets_tfds.siim_pneumothorax import fake_data as siim_fake
    from datasets_tfds.siim_pneumothorax import siim_pneumothorax_dataset_builder as siim

    return {
        "siim": (siim.TfmedbenchSiimPneumothorax, "image_id", "uint8",
                 lambda root: siim_fake.write_tree(root, 10, size=SIZE)),
        "rsna_pe": (rsna.TfmedbenchRsnaPe, "sop_id", "default",
                    lambda root: rsna_fake.write_tree(root, size=SIZE)),
    }  # fmt: skip


# name: (builder class, key feature, full-resolution config, tree writer)
BUILDERS = {
    "shenzhen": (shenzhen.TfmedbenchNihShenzhen, "image_id", "default",
                 lambda root: shenzhen_fake.write_tree(root, 20, size=SIZE)),
    "chestxray14": (chestxray14.TfmedbenchChestxray14, "image_id", "default",
                    lambda root: chestxray14_fake.write_tree(root, 10, size=SIZE)),
    "chexpert": (chexpert.TfmedbenchChexpert, "image_id", "default",
                 lambda root: chexpert_fake.write_tree(root, 20, size=SIZE)),
    "montgomery": (montgomery.TfmedbenchMontgomery, "image_id", "default",
                   lambda root: montgomery_fake.write_tree(root, 10, size=SIZE)),
}  # fmt: skip


def _all_examples(builder):
    """{key: (split, example)} over the three splits, images decoded by PIL: TF's default
    JPEG decoding (`dct_method=""`, the fast integer IDCT) is off by up to 8 grey levels, so
    the input pipeline decodes JPEG features with INTEGER_ACCURATE, which equals PIL's."""
    out = {}
    for split in ("train", "validation", "test"):
        ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        for ex in tfds.as_numpy(ds):
            image = np.asarray(Image.open(io.BytesIO(ex["image"])))
            ex["image"] = image.reshape(*image.shape[:2], -1)
            out[ex[builder._key].decode()] = (split, ex)
    return out


def _build(cls, key, raw, data_dir, config):
    builder = testing.build(cls, raw, data_dir, config)
    builder._key = key
    return _all_examples(builder), builder


def _as_uint8(image):
    return image if image.dtype == np.uint8 else montgomery.to_uint8(image)


def _jpeg_round_trip(array):
    decoded = np.asarray(Image.open(io.BytesIO(resized.encode_jpeg(array))))
    return decoded.reshape(array.shape)


def _check_pair(full, small, side):
    """The reduced example `small` against the full-resolution example `full`."""
    reference = resized.shrink(_as_uint8(full["image"]), side)
    assert small["image"].shape == (*resized.shrunk_size(*full["image"].shape[:2], side),
                                    full["image"].shape[-1])  # fmt: skip
    np.testing.assert_array_equal(small["image"], _jpeg_round_trip(reference))
    if "mask" in full:
        np.testing.assert_array_equal(small["mask"], resized.shrink(full["mask"], side, nearest=True))
    for name, value in full.items():
        if name not in ("image", "mask"):
            np.testing.assert_array_equal(small[name], value, err_msg=name)
    return np.abs(small["image"].astype(np.int16) - reference)


def _compare_builds(case, tmp_path, side=256):
    cls, key, full_config, write = case
    write(tmp_path / "raw")
    full, _ = _build(cls, key, tmp_path / "raw", tmp_path / "data", full_config)
    reduced_name = str(side)
    small, builder = _build(cls, key, tmp_path / "raw", tmp_path / "data", reduced_name)
    assert builder.info.features["image"].encoding_format == "jpeg"
    assert {k: s for k, (s, _) in small.items()} == {k: s for k, (s, _) in full.items()}
    return [_check_pair(full[k][1], small[k][1], side) for k in full]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_reduced_config_is_the_full_config_shrunk(name, tmp_path):
    diffs = _compare_builds(BUILDERS[name], tmp_path)
    assert diffs and all(d.shape[0] == 256 or d.shape[1] == 256 for d in diffs)


@pytest.mark.parametrize("name", ["siim", "rsna_pe"])
def test_reduced_dicom_configs_are_the_full_configs_shrunk(name, tmp_path):
    _compare_builds(_dicom_builders()[name], tmp_path)


def test_512_config_within_the_documented_tolerance(tmp_path):
    """Radiograph-like images (the Shenzhen fixtures) at 600 x 540: 512 shrinks the shorter
    side; the stored JPEG stays within the documented tolerance of the exact shrink."""
    cls, key, _, _ = BUILDERS["shenzhen"]
    case = (cls, key, "default", lambda root: shenzhen_fake.write_tree(root, 20, size=(600, 540)))
    diffs = _compare_builds(case, tmp_path, side=512)
    assert {d.shape for d in diffs} == {(569, 512, 1)}  # 600 * 512 / 540 = 568.9
    assert max(float(d.mean()) for d in diffs) <= MEAN_TOLERANCE
    assert max(int(d.max()) for d in diffs) <= MAX_TOLERANCE


def test_small_images_are_not_enlarged():
    image = np.arange(200 * 100, dtype=np.uint32).reshape(200, 100).astype(np.uint8)[..., None]
    assert resized.shrink(image, 256) is image
    assert resized.shrunk_size(200, 100, 256) == (200, 100)
    assert resized.shrunk_size(1024, 1024, 512) == (512, 512)
    assert resized.shrunk_size(4892, 4020, 512) == (623, 512)  # Montgomery's largest


def test_config_names_and_defaults():
    for cls, full in ((shenzhen.TfmedbenchNihShenzhen, "default"),
                      (chestxray14.TfmedbenchChestxray14, "default"),
                      (chexpert.TfmedbenchChexpert, "default"),
                      (montgomery.TfmedbenchMontgomery, "default")):  # fmt: skip
        names = [c.name for c in cls.BUILDER_CONFIGS]
        assert cls.DEFAULT_BUILDER_CONFIG_NAME == full and names[0] == full
        assert {"512", "256"} <= set(names)
        by_name = {c.name: c for c in cls.BUILDER_CONFIGS}
        assert by_name[full].shorter_side is None and by_name["256"].shorter_side == 256
    names = [c.name for c in shenzhen.TfmedbenchNihShenzhen.BUILDER_CONFIGS]
    assert names == ["default", "paper_split", "512", "256", "paper_split_512", "paper_split_256"]
    paper_512 = shenzhen.TfmedbenchNihShenzhen.builder_configs["paper_split_512"]
    assert paper_512.lists == shenzhen.PAPER_LISTS and paper_512.shorter_side == 512
