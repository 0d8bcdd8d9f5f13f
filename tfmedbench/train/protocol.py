"""Training protocols: full fine-tuning (the paper's), a linear probe of a frozen backbone
(classification), or a decoder trained on a frozen encoder (segmentation).

Frozen layers are set `trainable=False`, which in Keras also runs their BatchNormalization in
inference mode (moving statistics used and left unchanged), as MoCo v3's linear protocol does
(`model.eval()` for the backbone). After training, `check_frozen` is MoCo v3's sanity check:
every frozen weight must be bit-identical to its value before training.
"""

from __future__ import annotations

import hashlib

import numpy as np

# Layers that are not part of the ResNet-50 (classifier head, U-Net decoder and head).
HEAD_PREFIXES = ("avgpool", "fc", "decoder_", "segmentation_head")


def frozen_layers(model, protocol):
    if protocol == "finetune":
        return []
    return [layer for layer in model.layers
            if layer.weights and not layer.name.startswith(HEAD_PREFIXES)]  # fmt: skip


def freeze(model, protocol):
    """Freeze the backbone for `protocol`; returns the frozen layers (empty for fine-tuning)."""
    layers = frozen_layers(model, protocol)
    for layer in layers:
        layer.trainable = False
    return layers


def digest(layers):
    """sha256 over every weight of `layers` (trainable and moving statistics alike)."""
    h = hashlib.sha256()
    for layer in layers:
        for weight in layer.weights:
            h.update(weight.path.encode())
            h.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return h.hexdigest()


def check_frozen(layers, before):
    """Raise if training changed any frozen weight (MoCo v3's linear-probe sanity check)."""
    after = digest(layers)
    if after != before:
        raise AssertionError("the frozen backbone changed during training (sanity check failed)")
    return after
