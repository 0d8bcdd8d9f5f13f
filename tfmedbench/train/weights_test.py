"""tfmedbench side of the weights: `--weights` resolution, full-size conversion, model loading."""

import os
import time

import numpy as np
import pytest

from tfmedbench.errors import UserError
from tfmedbench.train.weights import resolve_weights_path

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TFMEDBENCH_HOME", str(tmp_path / "home"))


def test_random_and_keras_files_pass_through(tmp_path):
    assert resolve_weights_path(None) is None and resolve_weights_path("Random") is None
    from tfmedbench.models import resnet50

    path = tmp_path / "a.weights.h5"
    resnet50(include_top=False, depths=(1, 1, 1, 1), width=8).save_weights(path)
    assert resolve_weights_path(str(path), depths=(1, 1, 1, 1), width=8) == str(path)
    # a .weights.h5 that is not one is refused with its name (checked, not passed through)
    bad = tmp_path / "b.weights.h5"
    bad.write_bytes(b"")
    with pytest.raises(UserError, match="b.weights.h5.*not an HDF5 file"):
        resolve_weights_path(str(bad))


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserError, match="weights list"):
        resolve_weights_path("not-a-model")
    with pytest.raises(UserError, match="not cached"):
        resolve_weights_path("moco-v2")
    with pytest.raises(UserError, match="needs a local file"):
        resolve_weights_path("moco-v2", fmt="moco")


def test_full_size_local_moco_file_converts_fast_and_loads_everywhere(tmp_path):
    """A full-size ResNet-50 MoCo-v2 file: convert (with parity), cache by content, reuse.
    (The conversion time is printed, not asserted: timing belongs to benchmarks/.)"""
    from tfmedbench.models import classifier_resnet50, resnet50, unet_resnet50
    from weights_converter import parity
    from weights_converter.testing import torch_resnet, writers

    reference = torch_resnet.reference_resnet(seed=5)
    src = str(tmp_path / "moco_v2_800ep_pretrain.pth.tar")
    writers.write_moco(reference, src, version=2)
    started = time.perf_counter()
    out = resolve_weights_path(src)
    seconds = time.perf_counter() - started
    print(f"FULL-SIZE conversion (read + assign + save + parity): {seconds:.1f} s")
    sidecar = __import__("json").load(open(out + ".json"))
    print(f"FULL-SIZE parity max_abs={sidecar['parity']['max_abs_diff']:.3e} rel_l2={sidecar['parity']['rel_l2']:.3e}")
    assert sidecar["parity"]["passed"]
    written = os.stat(out).st_mtime_ns, os.stat(out + ".json").st_mtime_ns
    assert resolve_weights_path(src) == out  # cached by content: no second conversion
    assert (os.stat(out).st_mtime_ns, os.stat(out + ".json").st_mtime_ns) == written
    assert resolve_weights_path(src, fmt="moco") != out  # explicit format: its own cache entry

    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in reference.features(torch.from_numpy(x)).items()}
    for model in (
        resnet50(include_top=False, backbone_weights=out),
        classifier_resnet50(14, backbone_weights=out),
        unet_resnet50(input_shape=(96, 96, 3), backbone_weights=out),
    ):
        result = parity.summarize(parity.compare(ref, parity.keras_features(model, x.transpose(0, 2, 3, 1), (3, 4, 6, 3))))
        print(f"FULL-SIZE {model.name}: max_abs={result['max_abs_diff']:.3e} rel_l2={result['rel_l2']:.3e}")
        assert result["passed"], result["per_output"]


def test_local_file_with_wrong_format_is_a_user_error(tmp_path):
    from weights_converter.testing import torch_resnet, writers

    src = str(tmp_path / "swav.pth.tar")
    writers.write_swav(torch_resnet.reference_resnet((1, 1, 1, 1), 8), src)
    with pytest.raises(UserError, match="moco"):
        resolve_weights_path(src, fmt="moco")
