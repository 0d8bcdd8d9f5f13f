"""SimCLR's own TPU ResNet (re-implemented here in TF ops, reading the checkpoint by its own
variable names) against the converted Keras backbone: what "torchvision-compatible" means.

Finding: stride on the 3x3 conv and `fixed_padding` on strided convs are exactly torchvision's;
the stem max-pool ('SAME') differs from torchvision's padding=1 on even-sized maps only.
"""

import numpy as np
import pytest

from weights_converter import convert, parity
from weights_converter.testing import writers
from weights_converter.testing.harness import DEPTHS, WIDTH, assert_parity, keras_backbone, random_input

tf = pytest.importorskip("tensorflow")


def simclr_tpu_forward(variables, x, depths, width):
    """google-research/simclr resnet.py (v1 generator, bottleneck, sk_ratio=0), inference mode."""
    scope = writers._TF1Scope("base_model")

    def conv(inputs, filters, kernel, strides):
        w = variables[f"{scope.unique('conv2d')}/kernel"]
        assert w.shape[-1] == filters and w.shape[0] == kernel
        if strides > 1:  # fixed_padding
            beg = (kernel - 1) // 2
            inputs = tf.pad(inputs, [[0, 0], [beg, kernel - 1 - beg], [beg, kernel - 1 - beg], [0, 0]])
        return tf.nn.conv2d(inputs, w, strides, "SAME" if strides == 1 else "VALID")

    def bn(inputs, relu=True):
        n = scope.unique("batch_normalization")
        g, b, m, v = (variables[f"{n}/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance"))
        out = (inputs - m) / np.sqrt(v + 1e-5) * g + b
        return tf.nn.relu(out) if relu else out

    out = {}
    h = bn(conv(tf.constant(x), 64 * width // 64, 7, 2))
    out["relu"] = h.numpy()
    h = tf.nn.max_pool2d(h, 3, 2, "SAME")
    for stage, blocks in enumerate(depths, start=1):
        filters = width * 2 ** (stage - 1)
        for b in range(blocks):
            strides = (1 if stage == 1 else 2) if b == 0 else 1
            shortcut = h
            if b == 0:
                shortcut = bn(conv(h, 4 * filters, 1, strides), relu=False)
            y = bn(conv(h, filters, 1, 1))
            y = bn(conv(y, filters, 3, strides))
            y = bn(conv(y, 4 * filters, 1, 1), relu=False)
            h = tf.nn.relu(y + shortcut)
        out[f"layer{stage}"] = h.numpy()
    out["pool"] = tf.reduce_mean(h, [1, 2]).numpy()
    return out


@pytest.fixture(scope="module")
def converted(reference, tmp_path_factory):
    folder = tmp_path_factory.mktemp("simclr")
    variables = writers.simclr_tf1_variables(reference, DEPTHS)
    prefix = writers.write_tf_checkpoint(variables, str(folder / "model.ckpt-225206"))
    out = str(folder / "simclr.weights.h5")
    convert.convert(prefix, out, fmt="simclr-tf", depths=DEPTHS, width=WIDTH, parity=False)
    return variables, keras_backbone(out)


def _nhwc(x):
    return x.transpose(0, 2, 3, 1)


def test_matches_simclr_tpu_resnet_on_odd_sizes(converted):
    variables, model = converted
    x = _nhwc(random_input(size=65))
    native = simclr_tpu_forward(variables, x, DEPTHS, WIDTH)
    keras_out = parity.keras_features(model, x, DEPTHS)
    # both NHWC: compare() transposes 4-D references from NCHW, so hand it NCHW
    native_nchw = {k: (v.transpose(0, 3, 1, 2) if v.ndim == 4 else v) for k, v in native.items()}
    assert_parity(native_nchw, keras_out, "simclr-tf vs TPU ResNet (65px)")


def test_even_sizes_differ_only_after_the_max_pool(converted):
    variables, model = converted
    x = _nhwc(random_input(size=64))
    native = simclr_tpu_forward(variables, x, DEPTHS, WIDTH)
    keras_out = parity.keras_features(model, x, DEPTHS)
    stem = np.abs(native["relu"] - keras_out["relu"]).max()
    after_pool = np.abs(native["layer1"] - keras_out["layer1"]).max()
    print(f"SIMCLR even 64px: stem max|diff| {stem:.2e}; layer1 max|diff| {after_pool:.2e}")
    assert stem <= 1e-4  # fixed_padding conv == torchvision conv
    assert after_pool > 1e-2  # 'SAME' max-pool pads (0,1), torchvision (1,1): a one-pixel shift
