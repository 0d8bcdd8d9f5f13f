"""Resolve a `--weights` value to a Keras `.weights.h5` backbone file (or None for random).

The model builders only load files; names and foreign checkpoints are resolved here, above them,
through the converter (`weights_converter`), which converts once and caches: later runs read the
cached `.weights.h5`, so training never imports torch.
"""

from __future__ import annotations

import os

from tfmedbench.errors import UserError
from tfmedbench.models.resnet import RESNET50_DEPTHS, RESNET50_WIDTH


def _exists(spec):
    # A TF checkpoint is named by its prefix: PREFIX.index + PREFIX.data-* (SimCLR).
    return os.path.exists(spec) or os.path.exists(spec + ".index")


def _converter():
    try:
        from weights_converter import api
    except ImportError as err:
        raise UserError(
            f"the weights converter is unavailable ({err}); install tfmedbench[convert]"
        ) from None
    return api


def check_backbone_file(path, depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """A `.weights.h5` must hold exactly the backbone of this configuration (cheap: no model)."""
    try:
        from weights_converter.h5check import check_backbone_file as check
    except ImportError:  # the converter package is optional; Keras will still check at load
        return path
    check(path, depths=tuple(depths), width=width)
    return path


def resolve_weights_path(spec, allow_fetch=False, fmt=None, depths=RESNET50_DEPTHS,
                         width=RESNET50_WIDTH):  # fmt: skip
    """`random`/None -> None; an existing `.weights.h5` path -> itself (checked); another file ->
    converted; a name -> the registry's converted file.

    `fmt` is `--weights-format` for a local checkpoint (None: detected from its keys).
    """
    if spec is None or str(spec).lower() == "random":
        if fmt is not None:
            raise UserError(f"--weights-format {fmt} needs a local checkpoint file, not random init")
        return None
    spec = str(spec)
    if _exists(spec):
        if spec.endswith(".weights.h5"):
            return check_backbone_file(spec, depths, width)
        return _converter().convert_local(spec, fmt=fmt, depths=tuple(depths), width=width)
    if fmt is not None:
        raise UserError(f"--weights-format {fmt} needs a local file, but {spec!r} does not exist")
    if os.sep in spec or spec.endswith((".h5", ".pth", ".tar", ".pt", ".pkl", ".zip")):
        raise UserError(f"--weights {spec}: no such file")
    path = _converter().resolve_name(spec, allow_fetch=allow_fetch, depths=tuple(depths),
                                     width=width)  # fmt: skip
    return None if path is None else check_backbone_file(path, depths, width)
