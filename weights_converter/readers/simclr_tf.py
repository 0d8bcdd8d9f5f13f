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
import math
import os
import re
import shutil
import stat
import zipfile
import zlib

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


# Release zips hold one TF1 checkpoint (SimCLR v1 ResNet50_1x: ~0.4 GB of variables incl. the
# Momentum slots) plus a TF-Hub export of the same variables; caps leave ~2.5x headroom.
MAX_ZIP_MEMBER_BYTES = 1 << 30
MAX_ZIP_TOTAL_BYTES = 2 << 30
MAX_ZIP_MEMBERS = 10_000
MAX_CHECKPOINT_BYTES = 2 << 30  # declared tensor bytes of one checkpoint
NUMERIC = {"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
           "uint8", "uint16", "uint32", "uint64", "bool"}


def _first_line(err):
    text = str(err).strip()
    return " ".join(text.splitlines()[0].split())[:200] if text else type(err).__name__


def _check_members(zip_path, infos, dest):
    """Refuse escaping paths, links, and sizes no release has -- from the central directory."""
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ConversionError(f"{zip_path}: {len(infos):,} members, more than a release zip has")
    root, total = os.path.realpath(dest), 0
    for info in infos:
        target = os.path.realpath(os.path.join(dest, info.filename))
        if os.path.isabs(info.filename) or not target.startswith(root + os.sep):
            raise ConversionError(f"{zip_path}: refusing unsafe path {info.filename!r} in zip")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ConversionError(f"{zip_path}: refusing symbolic link {info.filename!r} in zip")
        if info.file_size > MAX_ZIP_MEMBER_BYTES:
            raise ConversionError(
                f"{zip_path}: member {info.filename!r} inflates to {info.file_size:,} bytes, more than "
                f"the {MAX_ZIP_MEMBER_BYTES >> 20} MiB a checkpoint file can be; not a SimCLR release")
        total += info.file_size
    if total > MAX_ZIP_TOTAL_BYTES:
        raise ConversionError(f"{zip_path}: inflates to {total:,} bytes, more than the "
                              f"{MAX_ZIP_TOTAL_BYTES >> 20} MiB a SimCLR release can be")


def _copy_member(archive, info, target):
    """Stream one member; zipfile stops at the declared size and checks the CRC."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with archive.open(info) as source, open(target, "wb") as out:
        copied = 0
        for chunk in iter(lambda: source.read(1 << 20), b""):
            copied += len(chunk)
            if copied > info.file_size:
                raise zipfile.BadZipFile(f"member {info.filename!r} is longer than its entry says")
            out.write(chunk)


def _safe_extract(zip_path, dest):
    """Extract a release zip into `dest` atomically: DEST.partial, renamed when complete.

    Refuses absolute paths, '..' (zip-slip), links and oversized members before writing a byte;
    on any failure the partial folder is removed, so no `*.partial` is left behind.
    """
    partial = dest + ".partial"
    shutil.rmtree(partial, ignore_errors=True)  # a leftover from a killed run
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
            _check_members(zip_path, infos, partial)
            os.makedirs(partial)
            for info in infos:
                target = os.path.join(partial, info.filename)
                if info.is_dir():
                    os.makedirs(target, exist_ok=True)
                else:
                    _copy_member(archive, info, target)
        os.replace(partial, dest)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise ConversionError(f"{zip_path}: damaged release zip ({_first_line(err)}); download it again") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def resolve_prefix(path, workdir=None):
    """A checkpoint prefix from: a prefix, its .index file, a directory, or a release .zip."""
    path = str(path)
    if path.endswith(".zip") and os.path.isfile(path):
        dest = workdir or (path[: -len(".zip")] + ".unzipped")
        if not os.path.isdir(dest):
            _safe_extract(path, dest)
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


def open_checkpoint(prefix):
    """(reader, name -> shape, name -> dtype name), after checking the index against the data.

    Tensors are read one by one later (only the ones that are converted); first, every numeric
    tensor the index declares must fit in the data files, so a crafted index cannot make
    `get_tensor` allocate what the file does not hold.
    """
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
    except Exception as err:  # tf raises assorted errors (DataLossError, OpError ...) for corrupt files
        raise ConversionError(
            f"{prefix}: unreadable TF checkpoint ({type(err).__name__}: {_first_line(err)}); "
            "check that PREFIX.index and PREFIX.data-* are complete (download them again)"
        ) from None
    held = sum(os.path.getsize(p) for p in glob.glob(glob.escape(prefix) + ".data-*"))
    declared = 0
    for name, shape in shapes.items():
        if dtypes[name] in NUMERIC:
            declared += math.prod(shape) * tf.as_dtype(dtypes[name]).size
    if declared > min(held, MAX_CHECKPOINT_BYTES):
        raise ConversionError(
            f"{prefix}: its index declares {declared:,} bytes of tensors, its data files hold {held:,} "
            f"(cap {MAX_CHECKPOINT_BYTES >> 20} MiB); truncated or not a SimCLR checkpoint"
        )
    return reader, shapes, dtypes


def get_tensor(reader, prefix, name):
    try:
        return reader.get_tensor(name)
    except Exception as err:  # noqa: BLE001 -- DataLossError, OpError, ...
        raise ConversionError(
            f"{prefix}: cannot read tensor {name} ({type(err).__name__}: {_first_line(err)}); "
            "the checkpoint's data file is damaged -- download it again"
        ) from None


def read_checkpoint(prefix):
    """Every numeric tensor of a (checked) checkpoint, by name."""
    reader, shapes, dtypes = open_checkpoint(prefix)
    return {n: get_tensor(reader, prefix, n) for n in shapes if dtypes[n] in NUMERIC}


def read_simclr_tf(path, depths, width, workdir=None):
    prefix = resolve_prefix(path, workdir)
    reader, shapes, dtypes = open_checkpoint(prefix)
    if any(".ATTRIBUTES" in k for k in shapes):
        raise ConversionError(
            f"{prefix}: a TF2 object-based checkpoint; only the original TF1 SimCLR checkpoints "
            "(base_model/conv2d/kernel ...) are supported -- use the v1 zip or the v2 "
            "simclrv2/pretrained/r50_1x_sk0/model.ckpt-250228 files"
        )
    convs, bns = creation_order(depths)
    acct = Accountant("simclr-tf", prefix, depths, width, RULES)
    for name in sorted(shapes):
        if acct.rule_for(name):
            acct.ignore(name, acct.rule_for(name))
            continue
        if dtypes[name] not in ("float16", "bfloat16", "float32", "float64"):
            acct.reject(name, f"dtype {dtypes[name]}")
            continue
        target = _target(name, shapes[name], convs, bns, acct)
        if target is None:
            continue
        key, transpose = target
        value = get_tensor(reader, prefix, name)
        acct.assign(key, name, np.transpose(value, (3, 2, 0, 1)) if transpose else value)
    return acct.finish()


def _target(name, shape, convs, bns, acct):
    """(canonical key, is a conv kernel) for a SimCLR variable name; None after rejecting it."""
    m = _CONV.match(name)
    if m:
        i = int(m[1] or 0)
        if i >= len(convs):
            acct.reject(name, f"conv index {i} beyond the {len(convs)} convs of this ResNet")
        elif len(shape) != 4:
            acct.reject(name, f"kernel of rank {len(shape)}")
        else:
            return f"{convs[i]}.weight", True
        return None
    m = _BN.match(name)
    if m:
        i = int(m[1] or 0)
        if i >= len(bns):
            acct.reject(name, f"batch-norm index {i} beyond the {len(bns)} BNs of this ResNet")
            return None
        return f"{bns[i]}.{BN_TF_TO_TORCH[m[2]]}", False
    acct.reject(name)
    return None
