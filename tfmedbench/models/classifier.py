"""The paper's classifier: torchvision ResNet-50 backbone -> global average pool -> linear head."""

from __future__ import annotations

import keras
from keras import layers

from tfmedbench.models.resnet import RESNET50_DEPTHS, RESNET50_WIDTH, resnet50


def classifier_resnet50(
    num_classes,
    input_shape=(None, None, 3),
    backbone_weights=None,
    activation="sigmoid",
    depths=RESNET50_DEPTHS,
    width=RESNET50_WIDTH,
    name="classifier_resnet50",
):
    """Backbone (optionally loaded from a `.weights.h5`) + a fresh head.

    The head is initialised N(0, 0.01) with zero bias (the original code's
    `fc.weight.data.normal_(0, 0.01)`), and kept in float32 under mixed precision so the
    sigmoid and the loss are computed in full precision.
    """
    backbone = resnet50(
        include_top=False,
        input_shape=input_shape,
        backbone_weights=backbone_weights,
        depths=depths,
        width=width,
        name="backbone",
    )
    x = layers.GlobalAveragePooling2D(name="avgpool")(backbone.output)
    x = layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01),
        bias_initializer="zeros",
        dtype="float32",
        name="fc",
    )(x)
    if activation:
        x = layers.Activation(activation, dtype="float32", name="fc_activation")(x)
    return keras.Model(backbone.input, x, name=name)
