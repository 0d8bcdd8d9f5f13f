"""`tfmedbench pretrain`: continual supervised pre-training end to end on a ChestX-ray14 fixture."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tfmedbench.errors import UserError
from tfmedbench.study.pretrain import pretrain, read_sidecar, sha256_file, sidecar_path

HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
)
FINDINGS = ["No Finding", "Cardiomegaly|Effusion", "Effusion", "Cardiomegaly", "Mass|Effusion"]
TINY = {"depths": (1, 1, 1, 1), "width": 8, "epochs": 2, "batch_size": 4, "image_size": 32,
        "test_time": "resize"}  # fmt: skip


def write_chestxray14(root, n_patients=20):
    """NIH layout: images/*.png + Data_Entry_2017_v2020.csv, 2 images per patient."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    rows = []
    for patient in range(1, n_patients + 1):
        for follow_up in range(2):
            name = f"{patient:08d}_{follow_up:03d}.png"
            finding = FINDINGS[(patient + follow_up) % len(FINDINGS)]
            img = rng.integers(60, 120, (48, 48)).astype(np.uint8)
            if "Cardiomegaly" in finding:  # learnable: a bright centre
                img[16:34, 14:34] = 220
            Image.fromarray(img).save(root / "images" / name)
            rows.append(f"{name},{finding},{follow_up},{patient},50,M,PA,2500,2048,0.14,0.14\n")
    (root / "Data_Entry_2017_v2020.csv").write_text(HEADER + "".join(rows))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import keras

    from tfmedbench.models import resnet50

    root = tmp_path_factory.mktemp("pretrain")
    write_chestxray14(root / "CXR8")
    keras.utils.set_random_seed(5)
    init = root / "init_imagenet_like.weights.h5"
    resnet50(include_top=False, depths=(1, 1, 1, 1), width=8).save_weights(init)
    return root, init


def backbone_weights(path):
    from tfmedbench.models import resnet50

    model = resnet50(include_top=False, depths=(1, 1, 1, 1), width=8)
    model.load_weights(path)
    return model.get_weights()


def test_pretrain_from_a_weights_file_then_fine_tune_with_it(data, tmp_path):
    root, init = data
    out = pretrain(
        "chestxray14", str(init), tmp_path / "w", name="tinynet_cxr14",
        data_dir=str(root / "tfds"), manual_dir=str(root / "CXR8"), seed=0, overrides=TINY,
        verbose=0,
    )  # fmt: skip
    weights = tmp_path / "w" / "tinynet_cxr14.weights.h5"
    assert out["weights"] == str(weights) and weights.exists()
    assert out["sidecar"] == str(tmp_path / "w" / "tinynet_cxr14.weights.h5.json") == sidecar_path(weights)
    meta = read_sidecar(weights)
    assert meta["name"] == "tinynet_cxr14" and meta["sha256"] == sha256_file(weights)
    assert meta["pretrain"]["dataset"] == "chestxray14" and meta["pretrain"]["recipe"] == "DXC14"
    assert len(meta["pretrain"]["labels"]) == 14
    assert meta["source_sha256"] == sha256_file(init) and meta["source"] == init.name
    assert meta["normalization"]["mean"] == [0.485, 0.456, 0.406]
    assert meta["depths"] == [1, 1, 1, 1] and meta["width"] == 8
    # the converter's sidecar fields
    assert set(meta) >= {"name", "source", "source_sha256", "format", "ignored_keys",
                         "normalization", "parity", "versions"}  # fmt: skip
    assert out["metrics"]["epochs_run"] >= 1 and os.path.isdir(out["run_dir"])
    # started from the init file and trained: loads into the backbone, differs from the init
    new, old = backbone_weights(weights), backbone_weights(init)
    assert len(new) == len(old)
    assert any(not np.array_equal(a, b) for a, b in zip(new, old))
    # usable as --weights PATH in fine-tuning, with the pre-trained backbone actually loaded
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.train import fit

    write_shenzhen_tree(tmp_path / "raw_txc", n_images=24, size=64, seed=1)
    result = fit("TXC", str(weights), data_dir=str(root / "tfds"),
                 manual_dir=str(tmp_path / "raw_txc"), output_dir=str(tmp_path / "ft"), seed=0,
                 overrides={**TINY, "epochs": 1}, verbose=0)  # fmt: skip
    config = json.load(open(result.run_dir / "config.json"))
    assert config["weights_path"] == str(weights)
    assert np.isfinite(result.metrics["score"])
    # a second pretrain to the same name is refused rather than overwriting
    with pytest.raises(UserError, match="exists"):
        pretrain("chestxray14", str(init), tmp_path / "w", name="tinynet_cxr14",
                 data_dir=str(root / "tfds"), overrides=TINY, verbose=0)  # fmt: skip


def test_pretrain_cli_random_init_and_register(data, tmp_path, monkeypatch):
    from tfmedbench.cli.study import pretrain as pretrain_cmd
    from tfmedbench.train.weights import resolve_weights_path

    monkeypatch.setenv("TFMEDBENCH_HOME", str(tmp_path / "home"))
    root, _ = data
    result = CliRunner().invoke(
        pretrain_cmd,
        ["--dataset", "chestxray14", "--init", "random", "--output", str(tmp_path), "--register",
         "--data-dir", str(root / "tfds"), "--manual-dir", str(root / "CXR8"), "-q",
         "--epochs", "1", "--image-size", "32", "--batch-size", "4",
         "--set", "depths=1,1,1,1", "--set", "width=8", "--set", "test_time=resize"],
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "random_chestxray14.weights.h5").exists()
    meta = json.load(open(tmp_path / "random_chestxray14.weights.h5.json"))
    assert meta["pretrain"]["init"] == "random" and meta["source_sha256"] is None
    assert "use it:  tfmedbench fit --task TXC --weights" in result.output
    # registered: the name now resolves to the file
    assert "registered as random_chestxray14" in result.output
    path = resolve_weights_path("random_chestxray14", depths=(1, 1, 1, 1), width=8)
    assert path == str(tmp_path / "random_chestxray14.weights.h5")


def test_pretrain_rejects_bad_input(tmp_path):
    with pytest.raises(UserError, match="--dataset must be one of"):
        pretrain("mimic", "random", tmp_path)
    with pytest.raises(UserError, match="--name"):
        pretrain("chexpert", "random", tmp_path, name="bad name/")
    with pytest.raises(UserError, match="built-in initialization"):  # before any training
        pretrain("chexpert", "random", tmp_path, name="swav", register=True)
