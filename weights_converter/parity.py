"""Parity of a converted Keras backbone against the plain-PyTorch torchvision reference.

Both run in inference mode on the same random input; compared: the stem output, the four stage
outputs and the pooled features. Needs torch (conversion-time only).
"""

from __future__ import annotations

import numpy as np

MAX_ABS = 1e-4
REL_L2 = 1e-5


def keras_features(model, x_nhwc, depths):
    import keras

    from tfmedbench.models import encoder_tap_names

    taps = encoder_tap_names(depths)
    probe = keras.Model(model.input, [model.get_layer(n).output for n in taps])
    outs = [np.asarray(o) for o in probe(x_nhwc, training=False)]
    names = ["relu"] + [f"layer{s}" for s in range(1, len(taps))]
    feats = dict(zip(names, outs))
    feats["pool"] = outs[-1].mean(axis=(1, 2))
    return feats


def compare(reference, candidate):
    """{name: (max abs diff, relative L2)} over matching arrays; NCHW reference vs NHWC candidate."""
    out = {}
    for name, ref in reference.items():
        ref = np.asarray(ref, dtype=np.float64)
        got = np.asarray(candidate[name], dtype=np.float64)
        if ref.ndim == 4:
            ref = ref.transpose(0, 2, 3, 1)
        diff = got - ref
        out[name] = (float(np.abs(diff).max()), float(np.linalg.norm(diff) / max(np.linalg.norm(ref), 1e-30)))
    return out


def summarize(per_output):
    max_abs = max(v[0] for v in per_output.values())
    rel = max(v[1] for v in per_output.values())
    return {
        "max_abs_diff": max_abs,
        "rel_l2": rel,
        "per_output": {k: {"max_abs_diff": a, "rel_l2": r} for k, (a, r) in per_output.items()},
        "passed": bool(max_abs <= MAX_ABS and rel <= REL_L2),
        "thresholds": {"max_abs_diff": MAX_ABS, "rel_l2": REL_L2},
    }


def parity_check(model, tensors, depths, width, size=128, batch=2, seed=0):
    import torch

    from weights_converter.testing.torch_resnet import from_state_dict

    reference = from_state_dict(tensors, depths, width)
    x = np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in reference.features(torch.from_numpy(x)).items()}
    got = keras_features(model, x.transpose(0, 2, 3, 1), depths)
    result = summarize(compare(ref, got))
    result["compared"] = f"stem, {len(depths)} stages, pooled; {batch}x{size}x{size} N(0,1) input"
    return result
