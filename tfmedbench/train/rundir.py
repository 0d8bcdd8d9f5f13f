"""A run directory: every file name of a run lives here, and every file is written atomically
(temp file + rename) so readers never see halves.

    config.json          the resolved run specification (written first)
    history.csv          one row per finished epoch
    tensorboard/         scalars per epoch
    checkpoint/          the last finished epoch: model, optimizer, loop state (removed at the end)
    best.weights.h5      the best-validation model (save_weights=best)
    backbone.weights.h5  its ResNet-50 part, loadable by --weights (save_weights=best|backbone)
    predictions.npz      test predictions keyed by image id
    metrics.json         the test result; its presence with status "ok" marks a finished run
"""

from __future__ import annotations

import csv
import datetime
import glob
import io
import json
import math
import os
import shutil

import numpy as np

from tfmedbench.errors import UserError
from tfmedbench.fileutil import atomic_save_weights, atomic_write_bytes, atomic_write_text, versions

CONFIG = "config.json"
HISTORY = "history.csv"
HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "lr", "time_s")
TENSORBOARD = "tensorboard"
CHECKPOINT = "checkpoint"
BEST_WEIGHTS = "best.weights.h5"
BACKBONE_WEIGHTS = "backbone.weights.h5"
PREDICTIONS = "predictions.npz"
METRICS = "metrics.json"
SAVE_WEIGHTS = ("best", "backbone", "none")

__all__ = ["RunDir", "versions", "write_json", "new_run_dir"]


def _finite(value):
    """NaN/Inf -> None, recursively, so every JSON file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path, data):
    text = json.dumps(_finite(data), indent=2, sort_keys=True, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


class RunDir:
    """The files of one run. `prepare(resume, overwrite)` claims the folder before anything runs."""

    def __init__(self, path, chief=True):
        self.path = os.fspath(path)
        self.chief = chief

    def file(self, name):
        return os.path.join(self.path, name)

    # ------------------------------------------------------------ state of the folder
    def exists(self):
        return os.path.isdir(self.path) and bool(os.listdir(self.path))

    def finished(self):
        try:
            return read_json(self.file(METRICS)).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def has_checkpoint(self):
        return os.path.exists(os.path.join(self.path, CHECKPOINT, "state.json"))

    def prepare(self, resume=False, overwrite=False):
        """Claim the folder: a non-empty one is refused unless resuming or overwriting."""
        if self.exists() and not resume:
            if not overwrite:
                raise UserError(
                    f"{self.path} already holds a run ({', '.join(sorted(os.listdir(self.path))[:4])}"
                    "...); pass --resume to continue it, --overwrite to replace it, or another --output"
                )
            shutil.rmtree(self.path)
        if resume and self.exists() and self.finished():
            raise UserError(f"{self.path} holds a finished run (metrics.json); nothing to resume")
        os.makedirs(self.path, exist_ok=True)

    # ------------------------------------------------------------ files
    def write_config(self, config):
        write_json(self.file(CONFIG), config)

    def read_config(self):
        return read_json(self.file(CONFIG))

    def write_history(self, rows):
        buf = io.StringIO()
        if rows:
            # A fixed column order: rows restored from state.json on --resume come back with
            # sorted keys, and a resumed run's history.csv must read as the uninterrupted one's.
            known = [k for k in HISTORY_COLUMNS if k in rows[0]]
            writer = csv.DictWriter(buf, fieldnames=known + [k for k in rows[0] if k not in known])
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(self.file(HISTORY), buf.getvalue())

    def write_metrics(self, metrics):
        write_json(self.file(METRICS), metrics)

    def save_weights(self, model, name):
        atomic_save_weights(model, self.file(name))

    def write_predictions(self, arrays):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.file(PREDICTIONS), buf.getvalue())

    def tensorboard_dir(self):
        return self.file(TENSORBOARD)

    def drop_weights(self, policy):
        """Remove the weight files the `save_weights` policy does not keep."""
        keep = {"best": (BEST_WEIGHTS, BACKBONE_WEIGHTS), "backbone": (BACKBONE_WEIGHTS,)}
        for name in (BEST_WEIGHTS, BACKBONE_WEIGHTS):
            if name not in keep.get(policy, ()) and os.path.exists(self.file(name)):
                os.remove(self.file(name))

    # ------------------------------------------------------------ per-epoch checkpoint
    def save_checkpoint(self, epoch, model, optimizer, state):
        """Checkpoint after `epoch` (1-based): files named by epoch, then state.json pointing to
        them (atomic), then older files removed -- a crash at any point leaves one consistent
        checkpoint."""
        folder = self.file(CHECKPOINT)
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, f"epoch-{epoch:04d}")
        atomic_save_weights(model, stem + ".weights.h5")
        buf = io.BytesIO()
        np.savez(buf, *[np.asarray(v) for v in optimizer.variables])
        atomic_write_bytes(stem + ".optimizer.npz", buf.getvalue())
        write_json(os.path.join(folder, "state.json"), dict(state, epoch=epoch))
        for old in glob.glob(os.path.join(folder, "epoch-*")):
            if not os.path.basename(old).startswith(f"epoch-{epoch:04d}."):
                os.remove(old)

    def load_checkpoint(self, model, optimizer):
        """Restore model and optimizer; returns the saved loop state (with its `epoch`)."""
        folder = self.file(CHECKPOINT)
        state = read_json(os.path.join(folder, "state.json"))
        stem = os.path.join(folder, f"epoch-{state['epoch']:04d}")
        model.load_weights(stem + ".weights.h5")
        with np.load(stem + ".optimizer.npz") as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(optimizer.variables):
            raise UserError(f"{folder}: the checkpoint's optimizer does not match this run")
        for variable, value in zip(optimizer.variables, values):
            variable.assign(value)
        return state

    def remove_checkpoint(self):
        shutil.rmtree(self.file(CHECKPOINT), ignore_errors=True)


def new_run_dir(root, task, weights, seed):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{task}-{os.path.basename(str(weights)).replace('.weights.h5', '')}-s{seed}-{stamp}"
    return os.path.join(root, name)
