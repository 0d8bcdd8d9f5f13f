"""torchvision-exact ResNet-50 (v1.5) as a functional Keras 3 graph.

Why not `keras.applications.ResNet50`: that network puts the stride on the 1x1 conv, gives convs
biases and uses BatchNorm eps 1.001e-5, so torchvision / self-supervised checkpoints cannot load
into it without changing its function.

Layer names are the torchvision state-dict prefixes with '.' replaced by '_':
    conv1, bn1, layer{s}_{b}_conv{k}, layer{s}_{b}_bn{k}, layer{s}_{b}_downsample_{0,1}, fc
so `layer3.4.bn2.running_var` lives in Keras layer `layer3_4_bn2` (moving_variance).
"""

from __future__ import annotations

import keras
from keras import layers

from tfmedbench.models.fused_bn import BatchNormalization

# torchvision.models.resnet.Bottleneck.expansion
EXPANSION = 4
RESNET50_DEPTHS = (3, 4, 6, 3)
RESNET50_WIDTH = 64
# The input normalisation torchvision's ImageNet models (and every initialization of the paper)
# were trained with: RGB in [0, 1], then (x - mean) / std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# PyTorch BatchNorm2d defaults: eps 1e-5, momentum 0.1 (== Keras momentum 0.9).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def conv_initializer():
    # torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv.
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def batch_norm(name):
    # Keras' BatchNormalization on TF's fused kernel (2-3x faster fwd+bwd, same weights/math).
    return BatchNormalization(
        axis=-1, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name
    )


def conv(filters, kernel_size, stride, name, padding):
    """Bias-free conv with PyTorch's explicit symmetric zero padding.

    Keras 'same' padding is asymmetric for stride 2 (pads right/bottom only); torchvision pads
    symmetrically, so pad explicitly and convolve 'valid'.
    """

    def apply(x):
        if padding:
            x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=stride,
            padding="valid",
            use_bias=False,
            kernel_initializer=conv_initializer(),
            name=name,
        )(x)

    return apply


def bottleneck(x, width, stride, downsample, name):
    """torchvision Bottleneck (v1.5): stride on the 3x3 conv."""
    identity = x
    out = conv(width, 1, 1, f"{name}_conv1", 0)(x)
    out = batch_norm(f"{name}_bn1")(out)
    out = layers.ReLU(name=f"{name}_relu1")(out)
    out = conv(width, 3, stride, f"{name}_conv2", 1)(out)
    out = batch_norm(f"{name}_bn2")(out)
    out = layers.ReLU(name=f"{name}_relu2")(out)
    out = conv(width * EXPANSION, 1, 1, f"{name}_conv3", 0)(out)
    out = batch_norm(f"{name}_bn3")(out)
    if downsample:
        identity = conv(width * EXPANSION, 1, stride, f"{name}_downsample_0", 0)(x)
        identity = batch_norm(f"{name}_downsample_1")(identity)
    out = layers.Add(name=f"{name}_add")([out, identity])
    return layers.ReLU(name=f"{name}_out")(out)


def stage_output_name(stage, depths):
    """Name of the layer whose output is stage `stage` (1..4)."""
    return f"layer{stage}_{depths[stage - 1] - 1}_out"


STEM_OUTPUT = "relu"  # after conv1 -> bn1 -> relu, stride 2 (the U-Net's first skip)


def resnet_backbone(inputs, depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """Stem + 4 stages; returns the stage-4 feature map (stride 32)."""
    x = conv(width, 7, 2, "conv1", 3)(inputs)
    x = batch_norm("bn1")(x)
    x = layers.ReLU(name=STEM_OUTPUT)(x)
    # PyTorch pads the max-pool with -inf; its input is post-ReLU (>= 0), so zeros are exact.
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")(x)
    for stage, blocks in enumerate(depths, start=1):
        stage_width = width * 2 ** (stage - 1)
        for block in range(blocks):
            stride = 2 if (block == 0 and stage > 1) else 1
            x = bottleneck(
                x,
                stage_width,
                stride,
                downsample=(block == 0),
                name=f"layer{stage}_{block}",
            )
    return x


def resnet50(
    include_top=True,
    num_classes=1000,
    backbone_weights=None,
    input_shape=(None, None, 3),
    pooling=None,
    classifier_activation=None,
    depths=RESNET50_DEPTHS,
    width=RESNET50_WIDTH,
    name="resnet50",
):
    """torchvision `resnet50`, channels-last, ImageNet mean/std-normalised RGB input.

    Args:
      include_top: add global average pooling + `fc` (Dense(num_classes)).
      num_classes: outputs of `fc` (torchvision: 1000).
      backbone_weights: None (torchvision init) or the path of a `.weights.h5` file of a model
        with the same configuration (with `include_top=False`, a converted backbone). Names of
        initializations are resolved to files above this floor (`tfmedbench.train.weights`).
      pooling: with include_top=False, None returns the stride-32 feature map, "avg"/"max" pool.
      classifier_activation: None returns logits as torchvision does; e.g. "sigmoid".
      depths, width: bottleneck blocks per stage and stem width; the defaults are ResNet-50,
        smaller values give tiny models with the same topology for fast tests.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = resnet_backbone(inputs, depths=depths, width=width)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dense(
            num_classes,
            activation=classifier_activation,
            # torchvision nn.Linear default init: U(+-1/sqrt(fan_in)) for weight and bias.
            kernel_initializer=keras.initializers.VarianceScaling(
                1.0 / 3.0, mode="fan_in", distribution="uniform"
            ),
            bias_initializer=keras.initializers.RandomUniform(
                -1.0 / (width * 8 * EXPANSION) ** 0.5, 1.0 / (width * 8 * EXPANSION) ** 0.5
            ),
            dtype="float32",
            name="fc",
        )(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="maxpool_global")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    model = keras.Model(inputs, x, name=name)
    if backbone_weights is not None:
        model.load_weights(backbone_weights)
    return model
