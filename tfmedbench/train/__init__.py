"""Fine-tuning: `fit` one initialization on one task, under any tf.distribute strategy.

Names are loaded on first use, so light modules of this package (spec, rundir, predictions)
import without TensorFlow.
"""

import importlib

_EXPORTS = {"FitResult": "finetune", "fit": "finetune", "run": "finetune", "build_model": "build",
            "load_run_model": "build"}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
