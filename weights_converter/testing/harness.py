"""The converter tests' shared harness: one tiny same-topology configuration and helpers that
compare a Keras backbone with the plain-PyTorch reference (torch is imported only when used)."""

import numpy as np

from weights_converter import parity

DEPTHS = (2, 1, 2, 1)  # two blocks in stages 1 and 3: identity blocks are exercised too
WIDTH = 8


def random_input(size=64, batch=2, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def torch_features(model, x):
    import torch

    with torch.no_grad():
        return {k: v.numpy() for k, v in model.features(torch.from_numpy(x)).items()}


def keras_backbone(path, depths=DEPTHS, width=WIDTH):
    from tfmedbench.models import resnet50

    return resnet50(include_top=False, backbone_weights=path, depths=depths, width=width)


def assert_parity(reference_feats, keras_feats, label=""):
    result = parity.summarize(parity.compare(reference_feats, keras_feats))
    print(f"PARITY {label:28s} max_abs={result['max_abs_diff']:.3e} rel_l2={result['rel_l2']:.3e}")
    assert result["max_abs_diff"] <= parity.MAX_ABS, result["per_output"]
    assert result["rel_l2"] <= parity.REL_L2, result["per_output"]
    return result
