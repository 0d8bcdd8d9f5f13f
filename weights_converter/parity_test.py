"""Every release layout round-trips: torch reference -> file in that layout -> Keras, equal outputs."""

import functools

import numpy as np
import pytest

from weights_converter import convert, parity, readers
from weights_converter.testing import writers
from weights_converter.testing.harness import (
    DEPTHS, WIDTH, assert_parity, keras_backbone, random_input, torch_features,
)

W = writers
CASES = {  # case -> (writer(model, path), file name, expected detected format)
    "imagenet-19c8e357": (W.write_torchvision, "resnet50-19c8e357.pth", "torchvision"),
    "imagenet-0676ba61": (functools.partial(W.write_torchvision, counters=True), "resnet50-0676ba61.pth", "torchvision"),
    "barlow": (W.write_barlow, "resnet50.pth", "barlow"),
    "moco-v1": (functools.partial(W.write_moco, version=1), "moco_v1_200ep_pretrain.pth.tar", "moco"),
    "moco-v2": (functools.partial(W.write_moco, version=2), "moco_v2_800ep_pretrain.pth.tar", "moco"),
    "moco-v2-uncleaned": (functools.partial(W.write_moco, cleaned=False), "checkpoint_0199.pth.tar", "moco"),
    "pcl-v2": (functools.partial(W.write_moco, version=2), "PCL_v2_epoch200.pth.tar", "moco"),
    "swav": (W.write_swav, "swav_800ep_pretrain.pth.tar", "swav"),
    "deepcluster-v2": (functools.partial(W.write_swav, prototypes="multi"), "deepclusterv2_800ep_pretrain.pth.tar", "swav"),
    "insdis": (functools.partial(W.write_pycontrast, ema=False), "InsDis.pth", "pycontrast"),
    "pirl": (functools.partial(W.write_pycontrast, pirl=True), "PIRL.pth", "pycontrast"),
    "infomin": (W.write_pycontrast, "InfoMin_800.pth", "pycontrast"),
    "inat2021": (W.write_inat2021, "inat2021_supervised_large.pth.tar", "inat2021"),
    "inat2021-module": (functools.partial(W.write_inat2021, module_prefix=True), "inat2021_supervised_mini.pth.tar", "inat2021"),
    "benchmark": (W.write_benchmark, "chexpert.pth.tar", "benchmark"),
    "benchmark-module": (functools.partial(W.write_benchmark, module_prefix=True), "ImageNet_chestxray14.pth.tar", "benchmark"),
    "simclr-torch-tonylins": (W.write_simclr_tonylins, "resnet50-1x.pth", "simclr-torch"),
    "simclr-torch-separius": (W.write_simclr_separius, "r50_1x_sk0.pth", "simclr-torch"),
    "simclr-v1-tf": (lambda m, p: W.write_simclr_tf(m, f"{p}/model.ckpt-225206", DEPTHS, 1), "ResNet50_1x", "simclr-tf"),
    "simclr-v2-tf": (lambda m, p: W.write_simclr_tf(m, p, DEPTHS, 2), "model.ckpt-250228", "simclr-tf"),
    "byol": (W.write_byol, "pretrain_res50x1.pkl", "byol"),
}


def write_case(case, model, tmp_path):
    writer, filename, fmt = CASES[case]
    path = str(tmp_path / filename)
    writer(model, path)
    return path, fmt


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_parity(case, reference, tmp_path):
    path, fmt = write_case(case, reference, tmp_path)
    out = str(tmp_path / f"{case}.weights.h5")
    report = convert.convert(path, out, fmt=None, depths=DEPTHS, width=WIDTH, parity=False)
    assert report["format"] == fmt  # auto-detected from the key patterns
    assert report["keras_variables_assigned"] == report["tensors_used"] == len(readers.read(path, fmt, DEPTHS, WIDTH).tensors)
    x = random_input()
    assert_parity(torch_features(reference, x),
                  parity.keras_features(keras_backbone(out), x.transpose(0, 2, 3, 1), DEPTHS), case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_explicit_format_flag_reads_the_same(case, reference, tmp_path):
    path, fmt = write_case(case, reference, tmp_path)
    explicit = readers.read(path, fmt, DEPTHS, WIDTH)
    sd = {k: v.numpy() for k, v in reference.state_dict().items()}
    assert set(explicit.tensors) == set(readers.read(path, None, DEPTHS, WIDTH).tensors)
    for key, value in explicit.tensors.items():
        np.testing.assert_array_equal(value, sd[key])


def test_sidecar_records_accounting_and_parity(reference, tmp_path):
    import json

    path, _ = write_case("moco-v2-uncleaned", reference, tmp_path)
    out = str(tmp_path / "moco.weights.h5")
    report = convert.convert(path, out, name="moco-v2", depths=DEPTHS, width=WIDTH)
    sidecar = json.load(open(out + ".json"))
    assert sidecar["name"] == "moco-v2" and sidecar["format"] == "moco"
    assert len(sidecar["source_sha256"]) == 64
    assert sidecar["ignored"]["momentum key encoder (encoder_k)"] > 0
    assert sidecar["parity"]["passed"] and sidecar["parity"]["max_abs_diff"] <= 1e-4
    assert "keras" in sidecar["versions"] and "torch" in sidecar["versions"]
    assert "parity" in convert.format_report(report)


def test_unet_encoder_and_classifier_backbone_load_the_same_weights(reference, tmp_path):
    from tfmedbench.models import classifier_resnet50, encoder_tap_names, unet_resnet50

    path, _ = write_case("moco-v2", reference, tmp_path)
    out = str(tmp_path / "moco.weights.h5")
    convert.convert(path, out, depths=DEPTHS, width=WIDTH, parity=False)
    x = random_input()
    ref = torch_features(reference, x)
    unet = unet_resnet50(input_shape=(64, 64, 3), backbone_weights=out, depths=DEPTHS, width=WIDTH)
    # The encoder's layers live in the U-Net graph under their backbone names (the taps).
    got = parity.keras_features(unet, x.transpose(0, 2, 3, 1), DEPTHS)
    assert encoder_tap_names(DEPTHS)[0] == "relu"
    assert_parity(ref, got, "unet-encoder-taps")
    clf = classifier_resnet50(3, input_shape=(64, 64, 3), backbone_weights=out, depths=DEPTHS, width=WIDTH)
    got = parity.keras_features(clf, x.transpose(0, 2, 3, 1), DEPTHS)
    assert_parity(ref, got, "classifier-backbone")
