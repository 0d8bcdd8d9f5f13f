"""Format readers: `read(path, fmt)` -> Extraction; `detect_format(path)` from key patterns."""

from __future__ import annotations

import os
import zipfile

from weights_converter.errors import ConversionError
from weights_converter.spec import RESNET50_DEPTHS, RESNET50_WIDTH

# format -> one-line description (the CLI lists these)
FORMATS = {
    "torchvision": "flat torchvision state dict with a 1000-way fc (supervised ImageNet)",
    "moco": "{'state_dict'} with module.encoder_q.* (MoCo-v1/v2, PCL-v1/v2)",
    "swav": "flat module.* with projection_head / prototypes (SwAV, DeepCluster-v2, SeLa-v2)",
    "pycontrast": "{'model'} with module.encoder.* / module.head* (InsDis, PIRL, InfoMin)",
    "barlow": "flat torchvision keys without fc (Barlow Twins)",
    "inat2021": "{'state_dict'} torchvision keys (+/- module.), 10000-way fc (iNat2021, NeWT)",
    "benchmark": "{'state_dict'} (+/- module.) with head fc.0 (the paper's Zenodo releases)",
    "simclr-tf": "original SimCLR TF1 checkpoint (prefix, .index, directory or release .zip)",
    "simclr-torch": "SimCLR PyTorch conversion: tonylins {'state_dict'} or Separius {'resnet','head'}",
    "byol": "DeepMind BYOL pickle {'experiment_state', 'step'} (Haiku names)",
}


def is_tf_checkpoint(path):
    path = str(path)
    if os.path.isdir(path) or path.endswith(".index") or os.path.isfile(path + ".index"):
        return True
    return path.endswith(".zip") and zipfile.is_zipfile(path) and not _is_torch_zip(path)


def _is_torch_zip(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("data.pkl") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ConversionError(f"{path}: a damaged zip archive ({err}); download it again") from None


def _rows(value):
    """First dimension of a tensor-like value; None for scalars and non-tensors."""
    shape = getattr(value, "shape", None)
    return shape[0] if shape is not None and len(shape) >= 1 else None


def _is_plain_pickle(path):
    """BYOL's .pkl: a plain pickle (not a torch zip, not torch's legacy magic-number format)."""
    return str(path).endswith(".pkl")


def detect_object(obj, path):
    """Tell a PyTorch release's format from its key patterns."""
    if not isinstance(obj, dict):
        raise ConversionError(f"{path}: top level is {type(obj).__name__}, not a dict of weights")
    keys = set(map(str, obj))
    if {"resnet", "head"} <= keys:
        return "simclr-torch"
    if "model" in keys and isinstance(obj["model"], dict):
        if any(str(k).startswith("module.encoder.") for k in obj["model"]):
            return "pycontrast"
    if "state_dict" in keys and isinstance(obj["state_dict"], dict):
        sd = {str(k): v for k, v in obj["state_dict"].items()}
        if any(k.startswith("module.encoder_q.") for k in sd):
            return "moco"
        if "fc.0.weight" in sd or "module.fc.0.weight" in sd:
            return "benchmark"
        rows = _rows(sd.get("fc.weight", sd.get("module.fc.weight")))
        if rows == 10000:
            return "inat2021"
        if rows == 1000 and "fc.weight" in sd:
            return "simclr-torch"  # tonylins/simclr-converter: {'state_dict'} + supervised head
    if "module.conv1.weight" in keys and any(
        k.startswith(("module.prototypes", "module.projection_head")) for k in keys
    ):
        return "swav"
    if "conv1.weight" in keys:
        return "torchvision" if "fc.weight" in keys else "barlow"
    raise ConversionError(
        f"{path}: cannot tell the checkpoint format from its keys (top level: {sorted(keys)[:8]}); "
        f"pass --weights-format, one of: {', '.join(FORMATS)}"
    )


def read(path, fmt=None, depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """Read `path` as `fmt` (auto-detected when None) into the canonical backbone."""
    from weights_converter.readers import byol, simclr_tf, torch_formats

    path = str(path)
    if fmt is not None and fmt not in FORMATS:
        raise ConversionError(f"unknown weights format {fmt!r}; one of: {', '.join(FORMATS)}")
    if not (os.path.exists(path) or os.path.isfile(path + ".index")):
        raise ConversionError(f"{path}: no such file")
    if fmt == "simclr-tf" or (fmt is None and is_tf_checkpoint(path)):
        return simclr_tf.read_simclr_tf(path, depths, width)
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: a TensorFlow checkpoint or directory, not format '{fmt}'")
    if fmt == "byol" or (fmt is None and _is_plain_pickle(path)):
        return byol.read_byol(path, depths, width)
    from weights_converter import safe_load

    obj = safe_load.torch_load(path)
    detected = detect_object(obj, path) if fmt is None else fmt
    if detected in ("simclr-tf", "byol"):
        raise ConversionError(f"{path}: a PyTorch file, not format '{detected}'")
    if detected == "simclr-torch" and isinstance(obj, dict) and "resnet" in obj:
        layout = torch_formats.LAYOUTS["simclr-separius"]
    else:
        layout = torch_formats.LAYOUTS[detected]
    return torch_formats.read_torch_layout(obj, layout, path, depths, width)
