"""Fine-tuning: `fit` one initialization on one task, under any tf.distribute strategy."""

from tfmedbench.train.build import build_model, load_run_model
from tfmedbench.train.fit import FitResult, fit

__all__ = ["FitResult", "build_model", "fit", "load_run_model"]
