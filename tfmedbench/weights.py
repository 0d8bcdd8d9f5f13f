"""Resolve a `--weights` value to a Keras `.weights.h5` backbone file (or None for random)."""

from __future__ import annotations

import os

from tfmedbench.errors import UserError


def resolve_weights_path(spec, allow_fetch=False):
    """`random`/None -> None; an existing `.weights.h5` path -> itself; else the registry.

    The registry of the paper's 21 initializations and the checkpoint converter live in
    `weights_converter`; that import happens only here, so training never imports torch.
    """
    if spec is None or str(spec).lower() == "random":
        return None
    spec = str(spec)
    if os.path.exists(spec):
        if spec.endswith(".weights.h5"):
            return spec
        try:
            from weights_converter import api
        except ImportError as err:
            raise UserError(
                f"{spec} is not a Keras .weights.h5 file and the converter is unavailable ({err})"
            ) from None
        return api.convert_local(spec)
    try:
        from weights_converter import api
    except ImportError:
        raise UserError(
            f"unknown weights {spec!r}: not a file, and the weights registry is not installed; "
            "use 'random' or a path to a .weights.h5 file"
        ) from None
    return api.resolve_name(spec, allow_fetch=allow_fetch)
