"""Runtime setup of a run: seeds, strategy, precision, XLA and op determinism -> `Settings`."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfmedbench.errors import UserError
from tfmedbench.models import fused_bn
from tfmedbench.train import determinism as determinism_lib
from tfmedbench.train import strategy as strategy_lib

# TF offers no public way to turn op determinism off again once enabled in a process.
DETERMINISM_ENABLED = [False]


@dataclasses.dataclass
class Settings:
    strategy: str
    replicas: int
    device: str
    precision: str
    jit_compile: bool
    deterministic: bool
    global_batch: int
    fused_batchnorm: bool
    loss_sync_every: int
    threads: str
    input_pipeline: str = ""
    seg_augment: str = "-"

    def line(self):
        return " ".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items())


def setup(spec):
    """Seed everything, make the strategy and set precision; returns (strategy, Settings)."""
    runtime = spec.runtime
    wanted = "auto" if runtime.deterministic == "auto" else runtime.deterministic == "true"
    # The inter-op thread pool is fixed when TF's runtime starts: choose it first.
    determinism_lib.prepare(runtime.strategy, runtime.tpu, runtime.jit_compile, wanted)
    keras.utils.set_random_seed(spec.seed)  # Python, NumPy and TF (the original code set none)
    strat = strategy_lib.make_strategy(runtime.strategy, runtime.tpu)
    device = strategy_lib.accelerator(strat)
    policy = strategy_lib.resolve_precision(runtime.precision, device)
    jit = strategy_lib.resolve_jit(runtime.jit_compile, device)
    determinism = determinism_lib.resolve(wanted, device, jit)
    if jit and (determinism or DETERMINISM_ENABLED[0]):
        raise UserError(
            "deterministic ops and --jit-compile true cannot be combined (XLA has no "
            "deterministic max-pool gradient; TF cannot switch determinism off once a run in "
            "this process enabled it): use --jit-compile false, or a fresh process"
        )
    if determinism:
        tf.config.experimental.enable_op_determinism()
        DETERMINISM_ENABLED[0] = True
        if not determinism_lib.serialize_ops():
            determinism_lib.warn_unserialized()
    strategy_lib.set_precision(policy)
    recipe = spec.recipe
    settings = Settings(
        strategy=strategy_lib.strategy_name(strat),
        replicas=strat.num_replicas_in_sync,
        device=device,
        precision=policy,
        jit_compile=jit,
        deterministic=determinism and determinism_lib.single_inter_op_thread(),
        global_batch=recipe.batch_size * strat.num_replicas_in_sync,
        fused_batchnorm=fused_bn.ENABLED,
        loss_sync_every=strategy_lib.resolve_loss_sync_every(device),
        threads=strategy_lib.describe_threads(),
        seg_augment=recipe.seg_augment if recipe.augmentation == "xray_seg" else "-",
    )
    return strat, settings


def reseed(seed):
    """Seed again right before the model is built, so its initial weights do not depend on
    whatever drew random numbers before (an in-process dataset build, an earlier run)."""
    keras.utils.set_random_seed(seed)
