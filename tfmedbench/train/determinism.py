"""What makes a seeded CPU run reproduce bit for bit, and the one setting that must precede TF.

Three things are needed; `tf.config.experimental.enable_op_determinism()` is only the first:

1. Op determinism: each op gives the same output for the same inputs.
2. One inter-op thread (`serialize_ops`), so a graph's ops run one at a time in a fixed order.
   Op determinism does not fix that order, and the order changes sums: TF's AddN accumulates
   into the first input whose buffer it may reuse (refcount 1), and with 3+ inputs that changes
   the association of the additions ((a+b)+c vs (c+b)+a). Which buffer is free depends on which
   other ops have finished, i.e. on thread timing. The U-Net's encoder outputs at strides 4, 8
   and 16 each feed the next stage's conv1 and downsample and a decoder skip, so their gradients
   are 3-input AddNs. Measured (full-size U-Net, 64 px, batch 4, 2 cores): the same weights and
   batch gave 7 distinct gradients in 100 computations (26 differing from the first) with TF's
   default pool, 1 with one inter-op thread (oneDNN off: still 4 in 30; one intra-op thread:
   still 2 in 30); `fit --task VFS` on DRIVE gave another loss and Dice in 2 of 15 fresh
   processes, 0 of 7 with one thread. The classifier has no 3-input AddN (a ResNet block input
   feeds two ops, and a+b == b+a exactly).
   It can only be set before TF's runtime starts, hence `prepare` before anything runs an op.
3. Seeds drawn after data preparation (`fit` re-seeds just before building the model): Keras
   initializers take their seeds from Python's `random`, and building a TFDS dataset draws from
   it (6 `random.choice` calls naming its temporary directory), so a run that built its dataset
   started from other weights than one that found it built.
"""

from __future__ import annotations

import os
import sys

import tensorflow as tf

from tfmedbench.train.strategy import resolve_jit


def resolve(deterministic, device, jit):
    """Whether a run uses op determinism: "auto" means on CPU without XLA (XLA has no
    deterministic MaxPoolGrad); True/False force it."""
    if deterministic == "auto":
        return device == "cpu" and not jit
    return bool(deterministic)


def device_before_start(strategy="auto", tpu=None):
    """The device `strategy.accelerator` will report, known without starting TF's runtime."""
    if strategy == "tpu" or (strategy == "auto" and tpu):
        return "tpu"
    return "gpu" if tf.config.get_visible_devices("GPU") else "cpu"


def single_inter_op_thread():
    """Whether TF runs (or will run) with one inter-op thread."""
    return (
        tf.config.threading.get_inter_op_parallelism_threads() == 1
        or os.environ.get("TF_NUM_INTEROP_THREADS") == "1"
    )


def serialize_ops():
    """Ask TF for one inter-op thread; False when its runtime already started with more."""
    if single_inter_op_thread():
        return True
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # "cannot be modified after initialization"
        return False
    return True


def prepare(strategy="auto", tpu=None, jit_compile="auto", deterministic="auto"):
    """Call before the first TF op of a process that will train deterministically (`fit` does;
    so does a sweep before it builds datasets, since building runs TF ops)."""
    device = device_before_start(strategy, tpu)
    if resolve(deterministic, device, resolve_jit(jit_compile, device)):
        serialize_ops()


def warn_unserialized():
    print(
        "[tfmedbench] warning: TF's runtime started before fit() with more than one inter-op "
        "thread, so same-seed reruns may differ in the last bits (3-input gradient sums depend "
        "on op timing); for bit-identical reruns start fit() in a fresh process, or call "
        "tf.config.threading.set_inter_op_parallelism_threads(1) before any TF op",
        file=sys.stderr,
        flush=True,
    )
