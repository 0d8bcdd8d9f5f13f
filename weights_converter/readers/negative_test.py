"""Bad files fail loudly, naming what is wrong: missing, unexpected, transposed, wrong format."""

import pickle

import pytest
import torch

from weights_converter import convert, readers
from weights_converter.errors import ConversionError
from weights_converter.testing import writers
from weights_converter.testing.harness import DEPTHS, WIDTH


def _moco(reference, tmp_path, edit):
    path = str(tmp_path / "moco.pth.tar")
    writers.write_moco(reference, path)
    obj = torch.load(path, weights_only=False)
    edit(obj["state_dict"])
    torch.save(obj, path)
    return path


def test_missing_key_fails_naming_it(reference, tmp_path):
    path = _moco(reference, tmp_path, lambda sd: sd.pop("module.encoder_q.layer3.1.bn2.running_var"))
    with pytest.raises(ConversionError, match=r"missing 1 backbone tensor\(s\): layer3\.1\.bn2\.running_var"):
        readers.read(path, "moco", DEPTHS, WIDTH)


def test_missing_last_block_is_not_mistaken_for_a_smaller_net(reference, tmp_path):
    def drop_block(sd):
        for k in [k for k in sd if k.startswith("module.encoder_q.layer3.1.")]:
            del sd[k]

    with pytest.raises(ConversionError, match=r"missing 15 backbone"):
        readers.read(_moco(reference, tmp_path, drop_block), None, DEPTHS, WIDTH)


def test_extra_unknown_key_fails_naming_it(reference, tmp_path):
    def add(sd):
        sd["module.encoder_q.layer2.0.se.fc.weight"] = torch.zeros(4, 4)
        sd["module.mystery"] = torch.zeros(3)

    with pytest.raises(ConversionError, match=r"2 unexpected.*layer2\.0\.se\.fc\.weight.*module\.mystery"):
        readers.read(_moco(reference, tmp_path, add), "moco", DEPTHS, WIDTH)


def test_unknown_top_level_entry_fails(reference, tmp_path):
    path = str(tmp_path / "moco.pth.tar")
    writers.write_moco(reference, path)
    obj = torch.load(path, weights_only=False)
    obj["encoder_k_state"] = {"w": torch.zeros(1)}
    torch.save(obj, path)
    with pytest.raises(ConversionError, match=r"encoder_k_state \(top-level entry\)"):
        readers.read(path, "moco", DEPTHS, WIDTH)


def test_transposed_tensor_fails_with_both_shapes(reference, tmp_path):
    key = "module.encoder_q.layer1.0.conv1.weight"
    path = _moco(reference, tmp_path, lambda sd: sd.__setitem__(key, sd[key].permute(2, 3, 1, 0).contiguous()))
    with pytest.raises(ConversionError, match=r"shape mismatch.*layer1\.0\.conv1\.weight: \(1, 1, 8, 8\) != \(8, 8, 1, 1\)"):
        readers.read(path, "moco", DEPTHS, WIDTH)


def test_transposed_linear_free_conv_in_tf_checkpoint_fails(reference, tmp_path):
    variables = writers.simclr_tf1_variables(reference, DEPTHS)
    variables["base_model/conv2d/kernel"] = variables["base_model/conv2d/kernel"].transpose(3, 2, 0, 1).copy()
    prefix = writers.write_tf_checkpoint(variables, str(tmp_path / "model.ckpt-1"))
    with pytest.raises(ConversionError, match=r"base_model/conv2d/kernel -> conv1\.weight"):
        readers.read(prefix, "simclr-tf", DEPTHS, WIDTH)


def test_tf_checkpoint_in_a_wrong_order_fails(reference, tmp_path):
    """A mis-ordered mapping (here: layer1.0's shortcut conv where its 3x3 should be) cannot fit."""
    variables = writers.simclr_tf1_variables(reference, DEPTHS)
    a, c = "base_model/conv2d_1/kernel", "base_model/conv2d_3/kernel"  # shortcut 1x1, conv2 3x3
    variables[a], variables[c] = variables[c], variables[a]
    prefix = writers.write_tf_checkpoint(variables, str(tmp_path / "model.ckpt-2"))
    with pytest.raises(ConversionError, match="shape mismatch"):
        readers.read(prefix, "simclr-tf", DEPTHS, WIDTH)


def test_byol_missing_state_fails(reference, tmp_path):
    path = str(tmp_path / "pretrain_res50x1.pkl")
    writers.write_byol(reference, path)
    from weights_converter.safe_load import restricted_pickle_load

    assert restricted_pickle_load(path)["step"] == 1_000_000
    raw = open(path, "rb").read()
    # rename one EMA entry so the running variance of the stem BN is gone
    raw = raw.replace(b"res_net_torso/~/initial_batchnorm/~/var_ema", b"res_net_torso/~/initial_batchnorm/~/var_emX")
    open(path, "wb").write(raw)
    with pytest.raises(ConversionError, match=r"missing 1 backbone tensor\(s\): bn1\.running_var.*unexpected.*var_emX"):
        readers.read(path, "byol", DEPTHS, WIDTH)


@pytest.mark.parametrize(
    "writer, filename, wrong",
    [
        (writers.write_swav, "swav.pth.tar", "moco"),
        (writers.write_moco, "moco.pth.tar", "swav"),
        (writers.write_moco, "moco.pth.tar", "torchvision"),
        (writers.write_torchvision, "tv.pth", "barlow"),  # fc is not in Barlow's layout
        (writers.write_barlow, "barlow.pth", "pycontrast"),
        (writers.write_inat2021, "inat.pth.tar", "benchmark"),
        (writers.write_moco, "moco.pth.tar", "byol"),
        (writers.write_byol, "byol.pkl", "moco"),
        (writers.write_simclr_separius, "r50.pth", "torchvision"),
    ],
)
def test_wrong_format_flag_fails(writer, filename, wrong, reference, tmp_path):
    path = str(tmp_path / filename)
    writer(reference, path)
    with pytest.raises(ConversionError):
        readers.read(path, wrong, DEPTHS, WIDTH)


def test_tf_checkpoint_with_torch_format_flag_fails(reference, tmp_path):
    prefix = writers.write_simclr_tf(reference, str(tmp_path / "model.ckpt-1"), DEPTHS)
    with pytest.raises(ConversionError):
        readers.read(prefix, "swav", DEPTHS, WIDTH)


def test_unknown_format_name_and_undetectable_file(tmp_path):
    path = str(tmp_path / "weird.pth")
    torch.save({"weights": {"a": torch.zeros(1)}}, path)
    with pytest.raises(ConversionError, match="unknown weights format"):
        readers.read(path, "moco-v9", DEPTHS, WIDTH)
    with pytest.raises(ConversionError, match="cannot tell the checkpoint format"):
        readers.read(path, None, DEPTHS, WIDTH)


def test_wrong_network_size_fails(reference, tmp_path):
    path = str(tmp_path / "tv.pth")
    writers.write_torchvision(reference, path)
    with pytest.raises(ConversionError, match="missing"):
        readers.read(path, "torchvision", (3, 4, 6, 3), WIDTH)


def test_keras_assignment_is_strict_both_ways(reference, tmp_path):
    path = str(tmp_path / "tv.pth")
    writers.write_torchvision(reference, path)
    tensors = dict(readers.read(path, None, DEPTHS, WIDTH).tensors)
    model = convert.build_backbone(DEPTHS, WIDTH)
    extra = dict(tensors, **{"layer9.0.conv1.weight": tensors["conv1.weight"]})
    with pytest.raises(ConversionError, match=r"1 tensor\(s\) unused \['layer9"):
        convert.assign(model, extra)
    fewer = {k: v for k, v in tensors.items() if k != "bn1.bias"}
    with pytest.raises(ConversionError, match=r"1 Keras variable\(s\) unassigned.*bn1/beta"):
        convert.assign(model, fewer)


def test_output_must_be_keras_weights_file(reference, tmp_path):
    path = str(tmp_path / "tv.pth")
    writers.write_torchvision(reference, path)
    with pytest.raises(ConversionError, match=".weights.h5"):
        convert.convert(path, str(tmp_path / "out.h5"), depths=DEPTHS, width=WIDTH)


def test_pickled_garbage_is_a_clear_error(tmp_path):
    path = str(tmp_path / "x.pkl")
    pickle.dump(["not", "byol"], open(path, "wb"))
    with pytest.raises(ConversionError, match="not a BYOL checkpoint"):
        readers.read(path, None, DEPTHS, WIDTH)
