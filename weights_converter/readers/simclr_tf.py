"""SimCLR v1/v2 original TensorFlow (TF1, name-based) checkpoints, read with tf.train.load_checkpoint.

google-research/simclr builds the ResNet with `tf.layers` inside `base_model/`, so variables are
named by creation order: `conv2d`, `conv2d_1`, ... and `batch_normalization`, `batch_normalization_1`
... (separate counters). We map them BY STRUCTURE, replaying the TPU ResNet's creation order
(resnet.py `bottleneck_block`): stem conv/BN, then per block -- projection shortcut conv/BN FIRST
(first block of each group only), then conv 1x1 / BN, conv 3x3 (strided) / BN, conv 1x1 / BN.
Shapes are checked for every tensor, so a wrong order fails loudly (shortcut and 1x1 convs differ).

Stride and padding: the TPU ResNet puts the stride on the 3x3 conv (like torchvision v1.5) and
pads strided convs with `fixed_padding` (symmetric k//2), which equals torchvision's padding.
The one difference is the stem max-pool: TF 'SAME' padding pads (0, 1) for even inputs where
torchvision pads (1, 1); on odd-sized feature maps the two coincide. Converted weights run in the
torchvision layout, as the paper ran them (via the PyTorch conversions); see the tests.
SimCLR itself feeds [0, 1] RGB without mean/std normalisation (see the registry).
"""

from __future__ import annotations

import glob
import os
import re
import zipfile

import numpy as np

from weights_converter.errors import ConversionError
from weights_converter.readers.common import Accountant

RULES = (
    (r"^global_step$", "training step counter"),
    (r"/Momentum$", "optimizer slot (Momentum)"),
    (r"^head_supervised/", "supervised linear head (head_supervised)"),
    (r"^head_contrastive/", "projection head (head_contrastive)"),
    (r"^ema_model/", "EMA copy of the model (ema_model)"),
)
BN_TF_TO_TORCH = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_CONV = re.compile(r"^base_model/conv2d(?:_(\d+))?/kernel$")
_BN = re.compile(r"^base_model/batch_normalization(?:_(\d+))?/(gamma|beta|moving_mean|moving_variance)$")


def creation_order(depths):
    """(conv modules, bn modules) in the order SimCLR's resnet.py creates them."""
    convs, bns = ["conv1"], ["bn1"]
    for stage, blocks in enumerate(depths, start=1):
        for b in range(blocks):
            block = f"layer{stage}.{b}"
            if b == 0:  # use_projection=True: the shortcut is built before the residual branch
                convs.append(f"{block}.downsample.0")
                bns.append(f"{block}.downsample.1")
            for k in (1, 2, 3):
                convs.append(f"{block}.conv{k}")
                bns.append(f"{block}.bn{k}")
    return convs, bns


def _safe_extract(zip_path, dest):
    """Extract a release zip, refusing absolute paths and '..' (zip-slip)."""
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            target = os.path.realpath(os.path.join(dest, member.filename))
            if not target.startswith(os.path.realpath(dest) + os.sep):
                raise ConversionError(f"{zip_path}: refusing unsafe path {member.filename!r} in zip")
        archive.extractall(dest)


def resolve_prefix(path, workdir=None):
    """A checkpoint prefix from: a prefix, its .index file, a directory, or a release .zip."""
    path = str(path)
    if path.endswith(".zip") and os.path.isfile(path):
        dest = workdir or (path[: -len(".zip")] + ".unzipped")
        if not os.path.isdir(dest):
            os.makedirs(dest + ".partial", exist_ok=True)
            _safe_extract(path, dest + ".partial")
            os.replace(dest + ".partial", dest)
        path = dest
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    if os.path.isfile(path + ".index"):
        return path
    if os.path.isdir(path):
        indexes = sorted(glob.glob(os.path.join(path, "**", "*.index"), recursive=True))
        # A release may also hold e.g. a TF-Hub module's variables.index: prefer the training
        # checkpoint model.ckpt-* when there is exactly one.
        training = [i for i in indexes if os.path.basename(i).startswith("model.ckpt")]
        if len(indexes) == 1 or len(training) == 1:
            return (indexes[0] if len(indexes) == 1 else training[0])[: -len(".index")]
        if indexes:
            raise ConversionError(
                f"{path}: {len(indexes)} TF checkpoints inside; pass the one to use "
                f"(e.g. {indexes[-1][:-len('.index')]})"
            )
    raise ConversionError(
        f"{path}: not a TensorFlow checkpoint (expected PREFIX.index + PREFIX.data-*, a directory "
        "holding one, or the release .zip)"
    )


def read_checkpoint(prefix):
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as err:  # tf raises assorted errors for corrupt files
        raise ConversionError(f"{prefix}: unreadable TF checkpoint ({type(err).__name__})") from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def read_simclr_tf(path, depths, width, workdir=None):
    prefix = resolve_prefix(path, workdir)
    variables = read_checkpoint(prefix)
    if any(".ATTRIBUTES" in k for k in variables):
        raise ConversionError(
            f"{prefix}: a TF2 object-based checkpoint; only the original TF1 SimCLR checkpoints "
            "(base_model/conv2d/kernel ...) are supported -- use the v1 zip or the v2 "
            "simclrv2/pretrained/r50_1x_sk0/model.ckpt-250228 files"
        )
    convs, bns = creation_order(depths)
    acct = Accountant("simclr-tf", prefix, depths, width, RULES)
    for name in sorted(variables):
        value = variables[name]
        if acct.rule_for(name):
            acct.ignore(name, acct.rule_for(name))
            continue
        m = _CONV.match(name)
        if m:
            i = int(m[1] or 0)
            if i >= len(convs):
                acct.reject(name, f"conv index {i} beyond the {len(convs)} convs of this ResNet")
            elif np.ndim(value) != 4:
                acct.reject(name, f"kernel of rank {np.ndim(value)}")
            else:
                acct.assign(f"{convs[i]}.weight", name, np.transpose(value, (3, 2, 0, 1)))
            continue
        m = _BN.match(name)
        if m:
            i = int(m[1] or 0)
            if i >= len(bns):
                acct.reject(name, f"batch-norm index {i} beyond the {len(bns)} BNs of this ResNet")
            else:
                acct.assign(f"{bns[i]}.{BN_TF_TO_TORCH[m[2]]}", name, value)
            continue
        acct.reject(name)
    return acct.finish()
