"""The reduced-resolution builder configs (`--data-config 256`) end to end: build, pipeline, fit.

Fixture trees of 300 x 270 px images (larger than 256, not square) in the official layouts;
tiny models. The builders' own checks (reduced images = the shrunk full-resolution ones) are in
datasets_tfds/resized_test.py.
"""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from datasets_tfds.montgomery.fake_data import write_tree as write_montgomery_tree
from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
from tfmedbench.data import pipeline, prepare
from tfmedbench.errors import UserError
from tfmedbench.tasks import get_recipe
from tfmedbench.train import fit

SIZE = (300, 270)
TINY = dict(epochs=1, image_size=32, resize_size=36, batch_size=4, depths=(1, 1, 1, 1), width=8)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("resized")
    write_shenzhen_tree(str(root / "txc"), n_images=20, size=SIZE)
    write_montgomery_tree(str(root / "lxs"), 10, size=SIZE)
    return root


def test_fit_from_the_256_config_records_it(trees, tmp_path):
    result = fit("TXC", data_dir=str(tmp_path / "tfds"), manual_dir=str(trees / "txc"),
                 output_dir=str(tmp_path / "run"), data_config="256", overrides=TINY,
                 verbose=0)  # fmt: skip
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["builder"] == "tfmedbench_nih_shenzhen/256" and config["data_config"] == "256"
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and 0.0 <= metrics["score"] <= 1.0
    builder = prepare.get_builder("tfmedbench_nih_shenzhen/256", str(tmp_path / "tfds"))
    assert builder.info.features["image"].encoding_format == "jpeg"
    shapes = {ex["image"].shape for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
    assert shapes == {(284, 256, 1)}  # 300 x 270 -> shorter side 256


def test_segmentation_pipeline_reads_the_256_config(trees, tmp_path):
    """LXS from Montgomery/256 (uint8 JPEG images instead of 16-bit PNG, masks shrunk with
    nearest neighbour): the evaluation pipeline yields the recipe's inputs and binary masks.
    (Training differs from the default config only in these inputs; fit_all_tasks_test trains
    LXS.)"""
    builder = prepare.build("tfmedbench_montgomery/256", str(trees / "lxs"),
                            str(tmp_path / "tfds"), verbose=False)  # fmt: skip
    recipe = get_recipe("LXS", **TINY)
    ds = pipeline.make_dataset(recipe, builder, "test", training=False, batch_size=4)
    batches = list(ds)
    assert sum(int(images.shape[0]) for images, _ in batches) == 4
    images, masks = batches[0]
    assert images.shape[1:] == (32, 32, 3) and masks.shape[1:] == (32, 32, 1)
    assert set(np.unique(masks.numpy())) == {0.0, 1.0}
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


def test_pipeline_decodes_jpeg_as_pil_does(trees, tmp_path):
    """TF's default JPEG decode (fast IDCT) is not PIL's; the pipeline's must be."""
    builder = prepare.build("tfmedbench_nih_shenzhen/256", str(trees / "txc"),
                            str(tmp_path / "tfds"), verbose=False)  # fmt: skip
    feature = builder.info.features["image"]
    ds = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    fast_differs = False
    for ex in ds.take(4):
        pil = np.asarray(Image.open(io.BytesIO(ex["image"].numpy())))[..., None]
        np.testing.assert_array_equal(pipeline.decode_feature(feature, ex["image"]).numpy(), pil)
        fast_differs |= bool((feature.decode_example(ex["image"]).numpy() != pil).any())
    assert fast_differs  # else the accurate decode would not be needed
    recipe = get_recipe("TXC", **TINY)
    assert pipeline.jpeg_feature_keys(builder) == ["image"]
    reader = pipeline.reader_for(recipe, builder, "train", training=True)
    assert "image" in reader.late_keys  # decoded by decode_feature, cached or not
    assert isinstance(reader.examples(), tf.data.Dataset)


def test_training_pipeline_decodes_grey_jpeg_only_inside_the_crop(trees, tmp_path, monkeypatch):
    """Uncached training splits of a grey JPEG config keep the bytes until RandomResizedCrop,
    which decodes its box only: the same batches as decoding every image whole."""
    builder = prepare.build("tfmedbench_nih_shenzhen/256", str(trees / "txc"),
                            str(tmp_path / "tfds"), verbose=False)  # fmt: skip
    recipe = get_recipe("TXC", **TINY, cache="none")
    assert pipeline.reader_for(recipe, builder, "train", training=True).encoded_keys == ["image"]
    assert pipeline.reader_for(recipe, builder, "validation", training=False).encoded_keys == []
    cached = get_recipe("TXC", **TINY, cache="memory")
    assert pipeline.reader_for(cached, builder, "train", training=True).encoded_keys == []

    def batches():
        ds = pipeline.make_dataset(recipe, builder, "train", training=True, batch_size=4, epoch=1)
        return [images.numpy() for images, _ in ds]

    cropped = batches()
    monkeypatch.setattr(pipeline, "crop_decodable_keys", lambda *args: [])
    whole = batches()
    assert len(cropped) == len(whole) > 1
    for a, b in zip(cropped, whole):
        np.testing.assert_array_equal(a, b)


def test_unknown_data_config_names_the_choices(tmp_path):
    with pytest.raises(UserError, match=r"--data-config '1024'.* 512, 256"):
        prepare.get_builder("tfmedbench_nih_shenzhen/1024", str(tmp_path))
