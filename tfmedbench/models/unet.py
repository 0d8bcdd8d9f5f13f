"""U-Net with a torchvision ResNet-50 encoder, equal to segmentation_models_pytorch
`Unet("resnet50")` with its defaults (decoder_channels=(256, 128, 64, 32, 16), batch norm,
nearest upsampling, no attention, no center block, 3x3 head, 1 class).

Written here because the Keras `segmentation-models` package does not import under Keras 3 and
its ResNet-50 is not torchvision's. Decoder layer names follow smp's state-dict keys
(`decoder.blocks.0.conv1.0.weight` -> `decoder_blocks_0_conv1_0`), encoder names are the
classifier backbone's (smp: `encoder.<torchvision key>`), so one backbone weights file serves both.
"""

from __future__ import annotations

import keras
from keras import layers

from tfmedbench.models.fused_bn import BatchNormalization
from tfmedbench.models.resnet import (
    BN_EPSILON,
    BN_MOMENTUM,
    RESNET50_DEPTHS,
    RESNET50_WIDTH,
    STEM_OUTPUT,
    resnet50,
    stage_output_name,
)

DECODER_CHANNELS = (256, 128, 64, 32, 16)


def encoder_tap_names(depths=RESNET50_DEPTHS):
    """Encoder outputs at strides 2, 4, 8, 16, 32 (smp: features[1:])."""
    return [STEM_OUTPUT] + [stage_output_name(s, depths) for s in (1, 2, 3, 4)]


def conv_bn_relu(x, filters, name):
    """smp Conv2dReLU: Conv3x3(pad 1, no bias) -> BN -> ReLU, named like its nn.Sequential."""
    x = layers.Conv2D(
        filters,
        3,
        padding="same",  # stride 1: symmetric, identical to PyTorch padding=1
        use_bias=False,
        # smp initialize_decoder: kaiming_uniform_(mode="fan_in", nonlinearity="relu").
        kernel_initializer=keras.initializers.HeUniform(),
        name=f"{name}_0",
    )(x)
    x = BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_1")(x)
    return layers.ReLU(name=f"{name}_2")(x)


def decoder_block(x, skip, filters, name):
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(x)
    if skip is not None:
        x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    x = conv_bn_relu(x, filters, f"{name}_conv1")
    return conv_bn_relu(x, filters, f"{name}_conv2")


def unet_resnet50(
    input_shape=(None, None, 3),
    classes=1,
    activation="sigmoid",
    backbone_weights=None,
    decoder_channels=DECODER_CHANNELS,
    depths=RESNET50_DEPTHS,
    width=RESNET50_WIDTH,
    name="unet_resnet50",
):
    """Build the U-Net; `backbone_weights` is a backbone `.weights.h5` path (or None).

    Input height and width must be multiples of 32 (as in smp).
    """
    encoder = resnet50(
        include_top=False,
        input_shape=input_shape,
        backbone_weights=backbone_weights,
        depths=depths,
        width=width,
        name="encoder",
    )
    taps = [encoder.get_layer(n).output for n in encoder_tap_names(depths)]
    x = taps[-1]
    skips = list(reversed(taps[:-1])) + [None]
    for i, (skip, filters) in enumerate(zip(skips, decoder_channels)):
        x = decoder_block(x, skip, filters, f"decoder_blocks_{i}")
    x = layers.Conv2D(
        classes,
        3,
        padding="same",
        # smp initialize_head: xavier_uniform_ weight, zero bias.
        kernel_initializer="glorot_uniform",
        dtype="float32",
        name="segmentation_head_0",
    )(x)
    if activation:
        x = layers.Activation(activation, dtype="float32", name="segmentation_head_activation")(x)
    return keras.Model(encoder.input, x, name=name)
