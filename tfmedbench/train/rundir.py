"""Run-directory files, each written atomically (temp file + rename) so readers never see halves."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform

from tfmedbench.fileutil import atomic_save_weights, atomic_write_text  # noqa: F401


def write_json(path, data):
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_history(path, rows):
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def versions():
    import keras
    import numpy
    import tensorflow as tf

    import tfmedbench

    out = {
        "tfmedbench": tfmedbench.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    try:
        import tensorflow_datasets as tfds

        out["tensorflow_datasets"] = tfds.__version__
    except ImportError:
        pass
    return out


def new_run_dir(root, task, weights, seed):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{task}-{os.path.basename(str(weights)).replace('.weights.h5', '')}-s{seed}-{stamp}"
    return os.path.join(root, name)
