"""One training step of a tiny U-Net / classifier on a fixed batch, under N logical CPUs.

usage: python -m tfmedbench.testing.replica_worker N_REPLICAS LOSS BATCH OUT.npz
Logical devices must be configured before TensorFlow starts, hence a process per setting.
Writes the step's loss, the example count and every weight after the step.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

n_replicas, loss, batch, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from tfmedbench.models import unet_resnet50  # noqa: E402
from tfmedbench.tasks import get_recipe  # noqa: E402
from tfmedbench.train.loop import Trainer  # noqa: E402

devices = [d.name for d in tf.config.list_logical_devices("CPU")][:n_replicas]
strategy = tf.distribute.MirroredStrategy(devices)
recipe = get_recipe("LXS", loss=loss, image_size=32, depths=(1, 1, 1, 1), width=8)
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, 32, 32, 3)).astype(np.float32)
y = (rng.random((batch, 32, 32, 1)) < 0.3).astype(np.float32)
keras.utils.set_random_seed(0)
with strategy.scope():
    model = unet_resnet50(input_shape=(32, 32, 3), depths=(1, 1, 1, 1), width=8)
    optimizer = keras.optimizers.SGD(0.1)  # plain SGD: the update is the gradient itself
    optimizer.build(model.trainable_variables)
trainer = Trainer(strategy, model, optimizer, recipe)
ds = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch))
value, count = trainer.train_step(next(iter(ds)))
np.savez(out, loss=float(value), count=float(count),
         **{f"w{i}": np.asarray(v) for i, v in enumerate(model.trainable_variables)})
