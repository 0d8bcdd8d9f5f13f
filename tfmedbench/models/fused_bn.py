"""BatchNormalization computed by TF's fused kernel (FusedBatchNormV3), Keras semantics kept.

Keras 3's BatchNormalization computes training-mode BN from `tf.nn.moments` and
`tf.nn.batch_normalization`: about ten element-wise ops forward and more backward, each a full
pass over the activation. TF's fused kernel (oneDNN on CPU, cuDNN on GPU) does the forward in one
op and the backward in one op, as PyTorch's `batch_norm` does. Same layer class hierarchy, name,
variables and order (`gamma`, `beta`, `moving_mean`, `moving_variance`), so weight files and the
converter's name mapping are unchanged; same math:

- training: normalise with the batch mean and the biased batch variance; the moving variance is
  updated with the biased variance as Keras does (the fused op returns the Bessel-corrected one,
  which is rescaled by (n - 1) / n);
- inference: normalise with the moving statistics.

Results equal Keras' layer to float32 rounding (tests/test_models.py checks it); the fused kernel
accepts float16/bfloat16 activations with float32 statistics, so mixed precision skips the casts.
`TFMEDBENCH_FUSED_BN=0` (or `ENABLED = False` before a model is traced) restores Keras' code.
Other backends, masks, renorm, or non-channels-last 4-D inputs fall back to Keras' code.
"""

from __future__ import annotations

import os

import keras
from keras import layers

ENABLED = os.environ.get("TFMEDBENCH_FUSED_BN", "1") != "0"


@keras.saving.register_keras_serializable(package="tfmedbench")
class BatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` on the fused kernel (same class name, same config)."""

    def _fusable(self, inputs, mask):
        return (
            ENABLED
            and keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.scale
            and self.center
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = inputs
        if x.dtype not in (tf.float32, tf.float16, tf.bfloat16):
            x = tf.cast(x, tf.float32)
        gamma = tf.cast(self.gamma.value, tf.float32)
        beta = tf.cast(self.beta.value, tf.float32)
        if training and self.trainable:
            empty = tf.constant([], tf.float32)
            y, mean, var_unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=empty, variance=empty,
                epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
                is_training=True,
            )
            shape = tf.shape(x)
            n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
            variance = var_unbiased * ((n - 1.0) / tf.maximum(n, 1.0))
            mean = tf.stop_gradient(mean)
            variance = tf.stop_gradient(variance)
            # A replica can receive no example of a partial last batch: its statistics are
            # undefined (NaN) and must leave the moving averages alone.
            seen = n > 0
            moving_mean = self.moving_mean * self.momentum + mean * (1.0 - self.momentum)
            moving_var = self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            self.moving_mean.assign(tf.where(seen, moving_mean, self.moving_mean))
            self.moving_variance.assign(tf.where(seen, moving_var, self.moving_variance))
        else:
            y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta,
                mean=tf.cast(self.moving_mean.value, tf.float32),
                variance=tf.cast(self.moving_variance.value, tf.float32),
                epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
                is_training=False,
            )
        return tf.cast(y, self.compute_dtype)
FusedBatchNormalization = BatchNormalization
