"""One training step of a tiny U-Net / classifier on a fixed batch, under N logical CPUs.

usage: python -m tfmedbench.testing.replica_worker N_REPLICAS LOSS[,LOSS...] BATCH[,BATCH...] OUT.npz
Logical devices must be configured before TensorFlow starts, hence a process per setting.
Writes, per (loss, batch), the step's loss, the example count and every weight before and after
the step (keys `LOSS-BATCH.loss`, `.count`, `.initN`, `.wN`).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's CPU Conv2D returns a wrongly shaped output for an empty batch in inference-mode
# graphs ("Incompatible shapes: [8] vs. [0,70,70,3]" at the next BN, measured with TF 2.21);
# the empty replica below needs Eigen's kernels. The loss aggregation tested is the same.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

n_replicas, losses, batches, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from tfmedbench.models import unet_resnet50  # noqa: E402
from tfmedbench.tasks import get_recipe  # noqa: E402
from tfmedbench.train.loop import Trainer  # noqa: E402

devices = [d.name for d in tf.config.list_logical_devices("CPU")][:n_replicas]
strategy = tf.distribute.MirroredStrategy(devices)
arrays = {}
# every (loss, batch) in one process: TF's start-up is the cost
for name, batch in [(n, int(b)) for n in losses.split(",") for b in batches.split(",")]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 64, 64, 3)).astype(np.float32)
    y = (rng.random((batch, 64, 64, 1)) < 0.3).astype(np.float32)
    recipe = get_recipe("LXS", loss=name, image_size=64, depths=(1, 1, 1, 1), width=8)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = unet_resnet50(input_shape=(64, 64, 3), depths=(1, 1, 1, 1), width=8)
        # BatchNorm in inference mode: in training mode each replica normalises with its own
        # batch statistics (as DataParallel does), which changes the forward pass itself. What
        # is tested here is the loss's aggregation over the global batch.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        optimizer = keras.optimizers.SGD(0.1)  # plain SGD: the update is the gradient itself
        optimizer.build(model.trainable_variables)
    key = f"{name}-{batch}"
    arrays.update({f"{key}.init{i}": np.asarray(v) for i, v in enumerate(model.trainable_variables)})
    trainer = Trainer(strategy, model, optimizer, recipe)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    value, count = trainer.train_step(next(iter(strategy.experimental_distribute_dataset(data))))
    arrays.update({f"{key}.loss": float(value), f"{key}.count": float(count)})
    arrays.update({f"{key}.w{i}": np.asarray(v) for i, v in enumerate(model.trainable_variables)})
np.savez(out, **arrays)
