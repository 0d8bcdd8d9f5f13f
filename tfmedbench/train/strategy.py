"""Distribution strategy, precision and XLA choices for a run."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from tfmedbench.errors import UserError

STRATEGIES = ("auto", "cpu", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def make_strategy(name="auto", tpu=None):
    """auto: TPU if `tpu` given, MultiWorker if TF_CONFIG names >1 worker, Mirrored over GPUs
    (or over several logical CPUs), else the default single-device strategy."""
    if name not in STRATEGIES:
        raise UserError(f"--strategy {name!r} is not one of {', '.join(STRATEGIES)}")
    if name == "auto":
        if tpu:
            name = "tpu"
        elif len(cluster_workers()) > 1:
            name = "multiworker"
        elif tf.config.list_logical_devices("GPU"):
            name = "mirrored"
        else:
            name = "cpu"
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError("--strategy multiworker needs TF_CONFIG describing the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()  # default: one device, no-op distribution


def strategy_name(strategy):
    """Public class name (MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy)."""
    for cls, name in (
        (tf.distribute.TPUStrategy, "TPUStrategy"),
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
    ):
        if isinstance(strategy, cls):
            return name
    return "DefaultStrategy"


def cluster_workers():
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster", {})
    return cluster.get("worker", []) + cluster.get("chief", [])


def is_chief():
    """Only the chief writes the run directory under multi-worker training."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    kind, index = task.get("type"), task.get("index", 0)
    if kind is None or kind == "chief":
        return True
    has_chief = bool(json.loads(os.environ["TF_CONFIG"]).get("cluster", {}).get("chief"))
    return kind == "worker" and index == 0 and not has_chief


def describe_threads():
    """TF's op thread pools as `intra/inter` (0 means TF's default: one per core)."""
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return f"{intra or 'auto'}/{inter or 'auto'}(cores={os.cpu_count()})"


def accelerator(strategy):
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def resolve_precision(precision, device):
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(device, "float32")
    return precision


def resolve_jit(jit_compile, device):
    """XLA on accelerators; off on CPU, where it measured slower than graph mode."""
    value = str(jit_compile).lower()
    if value == "auto":
        return device in ("gpu", "tpu")
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise UserError(f"--jit-compile {jit_compile!r} must be auto, true or false")


# Steps between reads of the loss on accelerators (see resolve_loss_sync_every).
ACCELERATOR_LOSS_SYNC_EVERY = 20


def resolve_loss_sync_every(device):
    """Steps between host reads of the training loss.

    A CPU step takes seconds, so a per-step read costs nothing and keeps the progress bar live;
    an accelerator runs 10-50 steps/s and each read would stall its queue.
    """
    return 1 if device == "cpu" else ACCELERATOR_LOSS_SYNC_EVERY


def set_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
