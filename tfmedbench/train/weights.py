"""Resolve a `--weights` value to a Keras `.weights.h5` backbone file (or None for random)."""

from __future__ import annotations

import os

from tfmedbench.errors import UserError


def _exists(spec):
    # A TF checkpoint is named by its prefix: PREFIX.index + PREFIX.data-* (SimCLR).
    return os.path.exists(spec) or os.path.exists(spec + ".index")


def resolve_weights_path(spec, allow_fetch=False, fmt=None):
    """`random`/None -> None; an existing `.weights.h5` path -> itself; another file -> converted.

    `fmt` is `--weights-format` for a local checkpoint (None: detected from its keys). Names go
    to the registry of the paper's initializations. The converter (`weights_converter`) is
    imported only here, and converts only once: later runs read its cached `.weights.h5`, so
    training never imports torch.
    """
    if spec is None or str(spec).lower() == "random":
        return None
    spec = str(spec)
    if _exists(spec):
        if spec.endswith(".weights.h5"):
            return spec
        try:
            from weights_converter import api
        except ImportError as err:
            raise UserError(
                f"{spec} is not a Keras .weights.h5 file and the converter is unavailable ({err})"
            ) from None
        return api.convert_local(spec, fmt=fmt)
    if fmt is not None:
        raise UserError(f"--weights-format {fmt} needs a local file, but {spec!r} does not exist")
    try:
        from weights_converter import api
    except ImportError:
        raise UserError(
            f"unknown weights {spec!r}: not a file, and the weights registry is not installed; "
            "use 'random' or a path to a .weights.h5 file"
        ) from None
    return api.resolve_name(spec, allow_fetch=allow_fetch)
