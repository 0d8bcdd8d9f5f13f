"""The fused BatchNormalization equals Keras' own layer (training and inference, statistics)."""

import numpy as np
import tensorflow as tf
from keras import layers

from tfmedbench.models import fused_bn


def test_fused_bn_matches_keras_batch_norm():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((4, 9, 7, 16)).astype("float32") * 3 + 1)
    w = tf.constant(rng.standard_normal((4, 9, 7, 16)).astype("float32"))
    ref = layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    fused = fused_bn.BatchNormalization(epsilon=1e-5, momentum=0.9)
    assert fused.__class__.__name__ == "BatchNormalization"
    for layer in (ref, fused):
        layer.build(x.shape)
        layer.gamma.assign(rng.uniform(0.5, 1.5, 16).astype("float32"))
        layer.beta.assign(rng.standard_normal(16).astype("float32"))
    fused.set_weights(ref.get_weights())
    grads = []
    for layer in (ref, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * w)
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])]
                     + [y.numpy()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for a, b in zip(ref.get_weights(), fused.get_weights()):  # moving mean / biased variance
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref(x, training=False).numpy(), fused(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert [v.path.split("/")[-1] for v in fused.weights] == \
        [v.path.split("/")[-1] for v in ref.weights]
