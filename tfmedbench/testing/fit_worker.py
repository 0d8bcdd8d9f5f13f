"""Runs one tiny `fit` in its own process (logical CPU devices must be set before TF starts).

usage: fit_worker.py DATA_DIR OUT_DIR STRATEGY [N_LOGICAL_CPUS]
Prints one JSON line: score, the strategy's replica count, and a digest of the final weights.
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

data_dir, out_dir, strategy = sys.argv[1:4]
n_cpus = int(sys.argv[4]) if len(sys.argv) > 4 else 1
if n_cpus > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * n_cpus
    )

from tfmedbench.train import fit  # noqa: E402

result = fit(
    "TXC",
    data_dir=data_dir,
    output_dir=out_dir,
    strategy=strategy,
    seed=3,
    overrides=dict(epochs=1, image_size=32, resize_size=36, batch_size=4, depths=(1, 1, 1, 1), width=8),
    verbose=0,
)
digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in result.model.get_weights()))
print(json.dumps({
    "score": result.metrics["score"],
    "replicas": result.metrics["settings"]["replicas"],
    "strategy": result.metrics["settings"]["strategy"],
    "n_test": result.metrics["extra"]["n_test"],
    "weights_sha256": digest.hexdigest(),
    "per_var": {v.path: float(np.asarray(v.numpy(), np.float64).sum()) for v in result.model.weights} if os.environ.get("FIT_WORKER_DEBUG") else None,
}))
