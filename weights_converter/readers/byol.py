"""BYOL (DeepMind) `pretrain_res50x1.pkl`: a pickle of {'experiment_state': ..., 'step': ...}.

Read WITHOUT jax/haiku through `safe_load.RestrictedUnpickler`; the experiment state is the named
tuple (online_params, target_params, online_state, target_state, opt_state). The backbone is the
ONLINE network's Haiku ResNet torso, mapped by name:

    <torso>/~/initial_conv {w}                    -> conv1.weight          (w is HWIO -> OIHW)
    <torso>/~/initial_batchnorm {scale, offset}   -> bn1.weight / bn1.bias ((1,1,1,C) -> (C,))
    <torso>/~/initial_batchnorm/~/mean_ema {average} -> bn1.running_mean  (var_ema -> running_var)
    <torso>/~/block_group_G/~/block_B/~/conv_I / batchnorm_I -> layer{G+1}.B.conv{I+1} / bn{I+1}
    ... /shortcut_conv / shortcut_batchnorm        -> layer{G+1}.B.downsample.0 / .1

Haiku's ResNet v1 strides the 3x3 conv (conv_1), like torchvision v1.5, but pads 'SAME'
(asymmetric for stride 2 on even sizes); the converted backbone runs in the torchvision layout,
as the paper ran BYOL (through the byol-convert PyTorch conversion).
"""

from __future__ import annotations

import re

import numpy as np

from weights_converter.errors import ConversionError
from weights_converter.readers.common import Accountant
from weights_converter.safe_load import InertRecord, restricted_pickle_load

RULES = (
    (r"/~/(mean|var)_ema/(hidden|counter)$", "EMA bookkeeping (hidden, counter)"),
    (r"^projector/", "projector MLP"),
    (r"^predictor/", "predictor MLP"),
    (r"^classifier/", "online linear classifier"),
)
EMA = {"mean": "running_mean", "var": "running_var"}
HAIKU_BN = {"scale": "weight", "offset": "bias"}


MAX_ENTRIES = 100_000  # parameter-tree leaves; BYOL's ResNet-50 online params + state: ~900


def _flatten(tree, path, field):
    """(slash-joined name, leaf) pairs of a nested dict, iteratively and with a leaf cap.

    The pickle may share one sub-dict under many keys (a DAG): walking it as a tree would
    multiply the leaves, so past MAX_ENTRIES the file is refused instead.
    """
    if not isinstance(tree, dict):
        raise ConversionError(f"{path}: experiment_state.{field} is {type(tree).__name__}, not a mapping")
    out, todo = [], [("", tree)]
    while todo:
        prefix, node = todo.pop()
        for key, value in node.items():
            name = f"{prefix}/{key}" if prefix else str(key)
            if isinstance(value, dict):
                todo.append((name, value))
            else:
                out.append((name, value))
            if len(out) + len(todo) > MAX_ENTRIES:
                raise ConversionError(f"{path}: experiment_state.{field} has more than "
                                      f"{MAX_ENTRIES:,} entries; not a ResNet-50 BYOL checkpoint")
    return out


def _module(rest):
    """Torso-relative Haiku module path -> torchvision module (or None)."""
    if rest == "initial_conv":
        return "conv1"
    if rest == "initial_batchnorm":
        return "bn1"
    m = re.fullmatch(r"block_group_(\d+)/~/block_(\d+)/~/(conv|batchnorm)_(\d)", rest)
    if m:
        kind = "conv" if m[3] == "conv" else "bn"
        return f"layer{int(m[1]) + 1}.{m[2]}.{kind}{int(m[4]) + 1}"
    m = re.fullmatch(r"block_group_(\d+)/~/block_(\d+)/~/shortcut_(conv|batchnorm)", rest)
    if m:
        return f"layer{int(m[1]) + 1}.{m[2]}.downsample.{0 if m[3] == 'conv' else 1}"
    return None


def canonical(name, torso):
    """Flattened source name -> (canonical key, transform) or None."""
    if not name.startswith(torso):
        return None
    rest = name[len(torso):]
    m = re.fullmatch(r"(.+)/~/(mean|var)_ema/average", rest)
    if m:
        module = _module(m[1])
        return (f"{module}.{EMA[m[2]]}", "vector") if module else None
    module_path, _, param = rest.rpartition("/")
    module = _module(module_path)
    if module is None:
        return None
    if param == "w" and (module.endswith(".0") or ".conv" in module or module == "conv1"):
        return f"{module}.weight", "hwio"
    if param in HAIKU_BN:
        return f"{module}.{HAIKU_BN[param]}", "vector"
    return None


def read_byol(path, depths, width):
    obj = restricted_pickle_load(path)
    if not isinstance(obj, dict) or "experiment_state" not in obj:
        keys = sorted(map(str, obj))[:8] if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError(f"{path}: not a BYOL checkpoint (no 'experiment_state'; found {keys})")
    state = obj["experiment_state"]
    if not isinstance(state, InertRecord) or len(state) != 5:
        raise ConversionError(f"{path}: 'experiment_state' is not BYOL's 5-field experiment state")
    acct = Accountant("byol", path, depths, width, RULES)
    for key in obj:
        if key != "experiment_state":
            acct.ignore(str(key), "training state outside the weights (top-level entry)")
    for field in ("target_params", "target_state", "opt_state"):
        acct.ignore(f"experiment_state.{field}", f"{field} (target network / optimizer), unused")
    tensors = dict(_flatten(state.online_params, path, "online_params"))
    tensors.update(_flatten(state.online_state, path, "online_state"))
    torsos = {n[: -len("initial_conv/w")] for n in tensors if n.endswith("/~/initial_conv/w")}
    if len(torsos) != 1:
        raise ConversionError(f"{path}: expected one ResNet torso with an initial_conv, found {sorted(torsos)}")
    torso = torsos.pop()
    acct.notes.append(f"Haiku torso '{torso.rstrip('/~')}'")
    for name, value in tensors.items():
        if acct.rule_for(name):
            acct.ignore(name, acct.rule_for(name))
            continue
        target = canonical(name, torso)
        array = np.asarray(value) if isinstance(value, np.ndarray) else None
        if target is None or array is None:
            acct.reject(name)
            continue
        key, transform = target
        if transform == "hwio":
            if array.ndim != 4:
                acct.reject(name, f"conv weight of rank {array.ndim}")
                continue
            array = np.transpose(array, (3, 2, 0, 1))
        elif array.ndim and max(array.shape) == array.size:  # (1,1,1,C) -> (C,)
            array = array.reshape(-1)
        acct.assign(key, name, array)
    return acct.finish()
