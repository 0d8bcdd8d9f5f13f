"""Readers for the PyTorch releases: structures as the authors published them.

Each layout names its container (top-level key holding the state dict, or None for a flat file),
the non-tensor top-level entries it may carry, the prefix(es) its backbone keys take, and the
explicit ignore rules for everything that is not backbone (heads, prototypes, key encoders ...).
"""

from __future__ import annotations

import dataclasses
import re

from weights_converter.errors import ConversionError
from weights_converter.readers.common import Accountant, to_numpy

BN_COUNTER = (r"\.num_batches_tracked$", "BatchNorm step counter (num_batches_tracked)")
# Top-level training-state entries the releases carry next to the weights.
TRAINING_META = ("epoch", "arch", "optimizer", "best_acc1", "best_acc", "opt", "args", "amp", "scheduler", "step")


@dataclasses.dataclass(frozen=True)
class TorchLayout:
    name: str
    container: str | None  # top-level key of the state dict; None = the file is the state dict
    prefixes: tuple  # candidate backbone prefixes, e.g. ("", "module.")
    rules: tuple  # (regex on the source key, reason) -- the explicit ignore list
    meta: tuple = ()  # other top-level keys, ignored by name (non-weights training state)
    rename: object = None  # key -> canonical key for non-torchvision naming (Separius)


LAYOUTS = {
    "torchvision": TorchLayout(
        "torchvision", None, ("",),
        (BN_COUNTER, (r"^fc\.(weight|bias)$", "supervised ImageNet classifier (fc)")),
    ),
    "barlow": TorchLayout("barlow", None, ("",), (BN_COUNTER,)),
    "swav": TorchLayout(
        "swav", None, ("module.",),
        (
            BN_COUNTER,
            (r"^module\.projection_head\.", "projection head (projection_head)"),
            (r"^module\.prototypes\.", "prototypes"),
        ),
    ),
    "moco": TorchLayout(
        "moco", "state_dict", ("module.encoder_q.",),
        (
            BN_COUNTER,
            (r"^module\.encoder_q\.fc\.", "projection head (encoder_q.fc)"),
            (r"^module\.encoder_k\.", "momentum key encoder (encoder_k)"),
            (r"^module\.queue(_ptr)?$", "negative-key queue"),
        ),
        TRAINING_META,
    ),
    "pycontrast": TorchLayout(
        "pycontrast", "model", ("module.encoder.",),
        (
            BN_COUNTER,
            (r"^module\.head\.", "projection head (head)"),
            (r"^module\.head_jig\.", "PIRL jigsaw head (head_jig)"),
        ),
        ("model_ema", "contrast", *TRAINING_META),
    ),
    "inat2021": TorchLayout(
        "inat2021", "state_dict", ("", "module."),
        (BN_COUNTER, (r"^(module\.)?fc\.(weight|bias)$", "iNat2021 classifier (fc)")),
        TRAINING_META,
    ),
    "benchmark": TorchLayout(
        "benchmark", "state_dict", ("", "module."),
        (BN_COUNTER, (r"^(module\.)?fc\.0\.(weight|bias)$", "classification head (fc.0)")),
        ("lossMIN", *TRAINING_META),  # the benchmark's save_checkpoint also stores its best loss
    ),
    "simclr-torch": TorchLayout(
        "simclr-torch", "state_dict", ("",),
        (BN_COUNTER, (r"^fc\.(weight|bias)$", "supervised linear head (head_supervised as fc)")),
        TRAINING_META,
    ),
}

# Separius/SimCLRv2-Pytorch names: net.0 = stem (conv, BatchNormRelu, maxpool), net.1..4 = groups.
_SEPARIUS = [
    (re.compile(r"^net\.0\.0\.weight$"), lambda m: "conv1.weight"),
    (re.compile(r"^net\.0\.1\.0\.(\w+)$"), lambda m: f"bn1.{m[1]}"),
    (
        re.compile(r"^net\.(\d)\.blocks\.(\d+)\.projection\.shortcut\.weight$"),
        lambda m: f"layer{m[1]}.{m[2]}.downsample.0.weight",
    ),
    (
        re.compile(r"^net\.(\d)\.blocks\.(\d+)\.projection\.bn\.0\.(\w+)$"),
        lambda m: f"layer{m[1]}.{m[2]}.downsample.1.{m[3]}",
    ),
    (
        re.compile(r"^net\.(\d)\.blocks\.(\d+)\.net\.([024])\.weight$"),
        lambda m: f"layer{m[1]}.{m[2]}.conv{int(m[3]) // 2 + 1}.weight",
    ),
    (
        re.compile(r"^net\.(\d)\.blocks\.(\d+)\.net\.([135])\.0\.(\w+)$"),
        lambda m: f"layer{m[1]}.{m[2]}.bn{int(m[3]) // 2 + 1}.{m[4]}",
    ),
]


def separius_canonical(key):
    for pattern, build in _SEPARIUS:
        m = pattern.match(key)
        if m:
            return build(m)
    return None


LAYOUTS["simclr-separius"] = TorchLayout(
    "simclr-torch", "resnet", ("",),
    (BN_COUNTER, (r"^fc\.(weight|bias)$", "supervised linear head (head_supervised as fc)")),
    ("head",),
    rename=separius_canonical,
)


def _state_of(obj, layout, path):
    if not isinstance(obj, dict):
        raise ConversionError(f"{path}: expected a dict at the top level, found {type(obj).__name__}")
    if layout.container is None:
        return obj, []
    if layout.container not in obj:
        raise ConversionError(
            f"{path}: format '{layout.name}' keeps its weights under '{layout.container}', which "
            f"this file lacks (top-level keys: {sorted(map(str, obj))[:8]})"
        )
    extras = [k for k in obj if k != layout.container]
    return obj[layout.container], extras


def read_torch_layout(obj, layout, path, depths, width):
    acct = Accountant(layout.name, path, depths, width, layout.rules)
    state, extras = _state_of(obj, layout, path)
    for key in extras:
        if key in layout.meta:
            acct.ignore(str(key), "training state outside the weights (top-level entry)")
        else:
            acct.reject(str(key), "top-level entry")
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: '{layout.container}' is not a state dict")
    if layout.rename is not None:
        acct.notes.append("Separius/SimCLRv2-Pytorch names (net.*)")
    else:
        prefix = next((p for p in layout.prefixes if f"{p}conv1.weight" in state), None)
        if prefix is None:
            raise ConversionError(
                f"{path}: no backbone in format '{layout.name}': expected a key "
                f"'{layout.prefixes[0]}conv1.weight' (keys start: {sorted(map(str, state))[:5]}). "
                "Check --weights-format (omit it to auto-detect)."
            )
        if prefix:
            acct.notes.append(f"backbone prefix '{prefix}'")
    for key, value in state.items():
        key = str(key)
        array = to_numpy(value)
        if array is None:
            reason = acct.rule_for(key)
            if reason is None:
                acct.reject(key, f"non-tensor {type(value).__name__}")
            else:
                acct.ignore(key, reason)
            continue
        if layout.rename is not None:
            canonical = layout.rename(key)
        elif key.startswith(prefix):
            canonical = key[len(prefix):]
        else:
            canonical = None
        acct.offer(key, array, canonical)
    return acct.finish()
