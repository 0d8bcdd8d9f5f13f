"""Canonical backbone -> Keras `tfmedbench.models.resnet50(include_top=False)` -> `.weights.h5`.

Layouts: conv OIHW -> HWIO; BN weight/bias/running_mean/running_var -> gamma/beta/moving_mean/
moving_variance. Keras layer names are the torchvision module names with '.' -> '_', so the
mapping is by name; every Keras variable must be assigned exactly once and every canonical tensor
consumed exactly once, else ConversionError lists both sides.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from tfmedbench.fileutil import atomic_save_weights
from weights_converter.errors import ConversionError
from weights_converter.spec import RESNET50_DEPTHS, RESNET50_WIDTH

KERAS_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
SIDECAR_SUFFIX = ".json"


def build_backbone(depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    from tfmedbench.models import resnet50

    return resnet50(include_top=False, input_shape=(None, None, 3), depths=depths, width=width)


def _torch_name(keras_layer_name):
    return keras_layer_name.replace("_", ".")


def assign(model, tensors):
    """Assign canonical tensors to the Keras backbone; strict both ways."""
    used, unassigned, mismatched = set(), [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        module = _torch_name(layer.name)
        for var in layer.weights:
            leaf = var.path.rsplit("/", 1)[-1]
            if leaf == "kernel":
                key, transform = f"{module}.weight", (2, 3, 1, 0)  # OIHW -> HWIO
            elif leaf in KERAS_BN:
                key, transform = f"{module}.{KERAS_BN[leaf]}", None
            else:
                unassigned.append(var.path)
                continue
            if key not in tensors:
                unassigned.append(f"{var.path} (needs {key})")
                continue
            value = tensors[key] if transform is None else np.transpose(tensors[key], transform)
            if tuple(value.shape) != tuple(var.shape):
                mismatched.append(f"{key}: {tuple(value.shape)} -> {var.path} {tuple(var.shape)}")
                continue
            if key in used:
                raise ConversionError(f"canonical tensor {key} would be assigned twice")
            var.assign(value)
            used.add(key)
    unused = sorted(set(tensors) - used)
    if unassigned or unused or mismatched:
        raise ConversionError(
            "Keras assignment failed: "
            f"{len(unassigned)} Keras variable(s) unassigned {unassigned[:8]}; "
            f"{len(unused)} tensor(s) unused {unused[:8]}; "
            f"{len(mismatched)} shape mismatch(es) {mismatched[:8]}"
        )
    return len(used)


def file_sha256(path):
    """sha256 of a file, or of a TF checkpoint's .index + .data files."""
    digest = hashlib.sha256()
    paths = [path]
    if not os.path.isfile(path):
        import glob

        paths = sorted(glob.glob(path + ".index") + glob.glob(path + ".data-*"))
    for p in paths:
        with open(p, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _versions():
    import keras
    import tensorflow as tf

    out = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def convert(
    src,
    out,
    fmt=None,
    name=None,
    depths=RESNET50_DEPTHS,
    width=RESNET50_WIDTH,
    parity=True,
    normalization=None,
):
    """Read `src`, write `out` (.weights.h5) + `out.json`; return the report dict."""
    from weights_converter import readers

    if not str(out).endswith(".weights.h5"):
        raise ConversionError(f"{out}: output must end with .weights.h5 (Keras 3 weights file)")
    started = time.perf_counter()
    extraction = readers.read(src, fmt, depths, width)
    read_s = time.perf_counter() - started
    model = build_backbone(depths, width)
    assigned = assign(model, extraction.tensors)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic_save_weights(model, out)
    report = {
        "name": name,
        "source": os.path.basename(str(src).rstrip("/")),
        "source_sha256": file_sha256(str(src)) if os.path.exists(str(src)) else None,
        "format": extraction.format,
        "depths": list(depths),
        "width": width,
        "tensors_used": len(extraction.tensors),
        "keras_variables_assigned": assigned,
        "ignored": extraction.ignored_summary(),
        "ignored_keys": [k for k, _ in extraction.ignored],
        "notes": extraction.notes,
        "normalization": normalization,
        "versions": _versions(),
        "read_seconds": round(read_s, 3),
    }
    if parity:
        from weights_converter.parity import parity_check

        report["parity"] = parity_check(model, extraction.tensors, depths, width)
    report["seconds"] = round(time.perf_counter() - started, 3)
    with open(str(out) + SIDECAR_SUFFIX + ".tmp", "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    os.replace(str(out) + SIDECAR_SUFFIX + ".tmp", str(out) + SIDECAR_SUFFIX)
    return report


def format_report(report):
    """Human-readable accounting + parity lines for the CLI."""
    lines = [
        f"format      {report['format']}  ({', '.join(report['notes']) or 'no prefix'})",
        f"backbone    {report['tensors_used']} tensors -> {report['keras_variables_assigned']} "
        "Keras variables (every one assigned exactly once)",
    ]
    for reason, count in sorted(report["ignored"].items()):
        lines.append(f"ignored     {count:5d}  {reason}")
    parity = report.get("parity")
    if parity:
        lines.append(
            f"parity      max|diff| {parity['max_abs_diff']:.2e}  rel L2 {parity['rel_l2']:.2e}  "
            f"({parity['compared']}; {'PASS' if parity['passed'] else 'FAIL'})"
        )
    lines.append(f"time        {report['seconds']:.1f} s")
    return "\n".join(lines)
