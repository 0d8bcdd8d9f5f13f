"""Architecture checks of the torchvision-exact ResNet-50, the classifier and the U-Net."""

import numpy as np
import pytest

from tfmedbench.models import classifier_resnet50, encoder_tap_names, resnet50, unet_resnet50
from tfmedbench.models.resnet import stage_output_name


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.fixture(scope="module")
def full_resnet():
    return resnet50(input_shape=(224, 224, 3))


def test_resnet50_parameter_count_equals_torchvision(full_resnet):
    # torchvision.models.resnet50(): sum(p.numel() for p in m.parameters()) == 25,557,032;
    # its 53,120 BN running statistics are buffers, non-trainable weights in Keras.
    assert trainable_count(full_resnet) == 25_557_032
    assert full_resnet.count_params() - trainable_count(full_resnet) == 53_120


def test_resnet50_v15_stride_on_3x3_no_bias_torch_bn(full_resnet):
    conv1 = full_resnet.get_layer("layer2_0_conv1")
    conv2 = full_resnet.get_layer("layer2_0_conv2")
    assert conv1.strides == (1, 1) and conv2.strides == (2, 2)
    assert full_resnet.get_layer("layer2_0_downsample_0").strides == (2, 2)
    convs = [layer for layer in full_resnet.layers if layer.__class__.__name__ == "Conv2D"]
    assert len(convs) == 53 and not any(c.use_bias for c in convs)
    bns = [layer for layer in full_resnet.layers if layer.__class__.__name__ == "BatchNormalization"]
    assert len(bns) == 53
    assert all(b.epsilon == 1e-5 and b.momentum == 0.9 for b in bns)
    assert full_resnet.get_layer("fc").kernel.shape == (2048, 1000)


def test_layer_names_map_to_torchvision_keys(full_resnet):
    names = {layer.name for layer in full_resnet.layers}
    for key in ("conv1", "bn1", "layer1_0_downsample_0", "layer1_0_downsample_1",
                "layer3_5_bn3", "layer4_2_conv3", "fc"):
        assert key in names
    assert "layer4_3_conv1" not in names  # stage 4 has 3 blocks


def test_feature_map_shapes_at_every_stride():
    model = resnet50(include_top=False, input_shape=(224, 224, 3))
    assert model.output_shape == (None, 7, 7, 2048)
    expected = {"relu": (112, 64), stage_output_name(1, (3, 4, 6, 3)): (56, 256),
                stage_output_name(2, (3, 4, 6, 3)): (28, 512),
                stage_output_name(3, (3, 4, 6, 3)): (14, 1024),
                stage_output_name(4, (3, 4, 6, 3)): (7, 2048)}
    for name, (size, channels) in expected.items():
        assert model.get_layer(name).output.shape == (None, size, size, channels), name


def test_symmetric_padding_matches_torch_on_odd_sizes():
    # torchvision: 225 -> conv (pad 3, stride 2) 113 -> maxpool (pad 1) 57 -> ... -> 8.
    model = resnet50(include_top=False, input_shape=(225, 225, 3))
    assert model.get_layer("relu").output.shape[1] == 113
    assert model.get_layer(stage_output_name(1, (3, 4, 6, 3))).output.shape[1] == 57
    assert model.output_shape[1] == 8


def test_full_size_forward_pass_is_finite(full_resnet):
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype("float32")
    y = full_resnet.predict(x, verbose=0)
    assert y.shape == (1, 1000) and np.isfinite(y).all()


def test_unet_parameter_count_equals_smp():
    # segmentation_models_pytorch Unet("resnet50"): 23,508,032 encoder + 9,013,073 decoder/head.
    unet = unet_resnet50(input_shape=(224, 224, 3))
    assert trainable_count(unet) == 32_521_105


@pytest.mark.parametrize("size", [224, 512, 576])
def test_unet_output_shape_equals_input(size):
    unet = unet_resnet50(input_shape=(size, size, 3), depths=(1, 1, 1, 1), width=8)
    assert unet.output_shape == (None, size, size, 1)
    taps = [unet.get_layer(n).output.shape[1] for n in encoder_tap_names((1, 1, 1, 1))]
    assert taps == [size // 2, size // 4, size // 8, size // 16, size // 32]


def test_unet_decoder_structure():
    unet = unet_resnet50(input_shape=(64, 64, 3), depths=(1, 1, 1, 1), width=8)
    out_channels = [unet.get_layer(f"decoder_blocks_{i}_conv2_0").filters for i in range(5)]
    assert out_channels == [256, 128, 64, 32, 16]
    assert unet.get_layer("decoder_blocks_4_conv1_0").input.shape[-1] == 32  # no skip in block 4
    assert unet.get_layer("decoder_blocks_3_conv1_0").input.shape[-1] == 64 + 8  # stem skip
    assert not unet.get_layer("decoder_blocks_0_conv1_0").use_bias
    head = unet.get_layer("segmentation_head_0")
    assert head.kernel_size == (3, 3) and head.use_bias and head.filters == 1


def test_one_backbone_file_serves_classifier_and_unet(tmp_path):
    backbone = resnet50(include_top=False, depths=(1, 1, 1, 1), width=8)
    rng = np.random.default_rng(1)
    backbone.set_weights([rng.standard_normal(w.shape).astype("float32") for w in backbone.get_weights()])
    path = str(tmp_path / "b.weights.h5")
    backbone.save_weights(path)
    clf = classifier_resnet50(3, input_shape=(64, 64, 3), backbone_weights=path, depths=(1, 1, 1, 1), width=8)
    unet = unet_resnet50(input_shape=(64, 64, 3), backbone_weights=path, depths=(1, 1, 1, 1), width=8)
    for name in ("conv1", "layer2_0_bn2", "layer4_0_downsample_0"):
        ref = backbone.get_layer(name).get_weights()
        for model in (clf, unet):
            for a, b in zip(ref, model.get_layer(name).get_weights()):
                np.testing.assert_array_equal(a, b)


def test_classifier_head_init_and_float32_under_mixed_precision():
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        clf = classifier_resnet50(14, input_shape=(64, 64, 3), depths=(1, 1, 1, 1), width=8)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    fc = clf.get_layer("fc")
    kernel = fc.kernel.numpy()
    assert fc.dtype_policy.compute_dtype == "float32"
    assert clf.output.dtype == "float32"
    assert abs(kernel.std() - 0.01) < 0.002 and np.all(fc.bias.numpy() == 0)
    assert clf.get_layer("conv1").dtype_policy.compute_dtype == "float16"
