"""Every bad weights source fails with ONE line that names the file and says what to do.

The audit's list, one test each: a bad `.weights.h5` (h5py's bare OSError before), `weights
fetch` / `convert` without torch (ModuleNotFoundError), random bytes / HTML / text / tar / empty
files as a checkpoint (reported as an unsafe pickle, `IndexError: pop from empty list`),
mixed-type BYOL keys (`TypeError '<'`), cyclic and deep pickles (RecursionError), a scalar or
non-tensor `fc.weight` (AttributeError / IndexError), and running out of memory (an empty
MemoryError). Crafted-file crashes and blow-ups are in hostile_test.py.
"""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from weights_converter import readers
from weights_converter.errors import ConversionError
from weights_converter.testing import hostile as h
from weights_converter.testing.harness import DEPTHS, WIDTH
from weights_converter.testing.isolated import assert_refused, run_isolated


def one_line(err, path):
    message = str(err.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


# --------------------------------------------------------------------------- .weights.h5


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory):
    from weights_converter.convert import build_backbone

    path = str(tmp_path_factory.mktemp("h5") / "good.weights.h5")
    build_backbone(DEPTHS, WIDTH).save_weights(path)
    return path


def test_good_backbone_file_passes_the_check(backbone_file):
    from weights_converter.h5check import check_backbone_file

    from weights_converter.spec import conv_bn_pairs

    summary = check_backbone_file(backbone_file, DEPTHS, WIDTH)
    assert summary["datasets"] == 5 * len(conv_bn_pairs(DEPTHS))  # 1 kernel + 4 BN vectors per pair


def _variants(good, folder):
    import h5py

    data = open(good, "rb").read()
    out = {}

    def write(name, raw):
        out[name] = str(folder / f"{name}.weights.h5")
        open(out[name], "wb").write(raw)

    write("random_bytes", np.random.default_rng(0).bytes(4096))
    write("truncated", data[: len(data) // 2])
    write("empty", b"")
    write("html", b"<!DOCTYPE html><html><body>Sign in to continue</body></html>")
    write("extra_dataset", data)
    with h5py.File(out["extra_dataset"], "a") as handle:
        handle["layers/add/vars/0"] = np.zeros(3, np.float32)
    write("nan", data)
    with h5py.File(out["nan"], "a") as handle:
        handle["layers/conv2d/vars/0"][0, 0, 0, 0] = np.nan
    write("external_link", data)
    with h5py.File(out["external_link"], "a") as handle:
        handle["layers/add/vars/x"] = h5py.ExternalLink("/etc/passwd", "/")
    write("int_weights", data)
    with h5py.File(out["int_weights"], "a") as handle:
        del handle["layers/conv2d/vars/0"]
        handle["layers/conv2d/vars/0"] = np.zeros((7, 7, 3, WIDTH), np.int32)
    return out


@pytest.mark.parametrize("name, reason", [
    ("random_bytes", "not an HDF5 file"), ("truncated", r"unreadable HDF5 \(OSError: .*truncated"),
    ("empty", "not an HDF5 file"), ("html", "not an HDF5 file"),
    ("extra_dataset", "unexpected dataset layers/add/vars/0"), ("nan", "non-finite"),
    ("external_link", "ExternalLink layers/add/vars/x"), ("int_weights", "dtype int32"),
])
def test_bad_weights_file_is_one_line_naming_it(backbone_file, tmp_path, name, reason):
    from weights_converter.h5check import WeightsFileError, check_backbone_file

    path = _variants(backbone_file, tmp_path)[name]
    with pytest.raises(WeightsFileError, match=reason) as err:
        check_backbone_file(path, DEPTHS, WIDTH)
    assert one_line(err, path).endswith("or pass the right file")


def test_weights_file_of_another_network_is_refused(backbone_file):
    from weights_converter.h5check import WeightsFileError, check_backbone_file

    with pytest.raises(WeightsFileError, match=r"width 16: .*\(bn1\): shape \(8,\) != \(16,\)") as err:
        check_backbone_file(backbone_file, DEPTHS, 16)
    one_line(err, backbone_file)
    with pytest.raises(WeightsFileError, match=r"missing dataset\(s\)") as err:
        check_backbone_file(backbone_file, (3, 4, 6, 3), WIDTH)
    with pytest.raises(WeightsFileError, match="no such file"):
        check_backbone_file(backbone_file + ".gone", DEPTHS, WIDTH)


def test_layers_swapped_under_the_same_shapes_are_caught(backbone_file, tmp_path):
    """Keras loads by group path; a file whose groups hold other layers' names is refused."""
    import h5py

    path = str(tmp_path / "swapped.weights.h5")
    open(path, "wb").write(open(backbone_file, "rb").read())
    with h5py.File(path, "a") as handle:
        a, b = handle["layers/batch_normalization_1/vars"], handle["layers/batch_normalization_2/vars"]
        a.attrs["name"], b.attrs["name"] = b.attrs["name"], a.attrs["name"]
    from weights_converter.h5check import WeightsFileError, check_backbone_file

    with pytest.raises(WeightsFileError, match="holds layer 'layer1_0_bn2', expected 'layer1_0_bn1'"):
        check_backbone_file(path, DEPTHS, WIDTH)


# --------------------------------------------------------------------------- not checkpoints

torch = pytest.importorskip("torch")


def _not_checkpoints(folder):
    files = {
        "random.pth": (np.random.default_rng(0).bytes(4096), "unrecognised binary data"),
        "page.pth.tar": (b"\n  <!DOCTYPE html>\n<html><head><title>Dropbox - Sign in</title>", "an HTML page"),
        "notes.pth": (b"these are not the weights you are looking for\n" * 20, "a text file"),
        "empty.pth": (b"", "an empty file"),
        "plain.pth": (pickle.dumps({"state_dict": {}}), "a pickle that is not torch.save output"),
    }
    out = {}
    for name, (raw, reason) in files.items():
        out[name] = (str(folder / name), reason)
        open(out[name][0], "wb").write(raw)
    tar_path = str(folder / "old.pth")
    with tarfile.open(tar_path, "w") as archive:
        info = tarfile.TarInfo("pickle")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"\x80\x02N."))
    out["old.pth"] = (tar_path, "a tar archive")
    return out


def test_files_that_are_not_checkpoints_say_what_they_are(tmp_path):
    for name, (path, reason) in _not_checkpoints(tmp_path).items():
        with pytest.raises(ConversionError, match=f"not a PyTorch checkpoint: {reason}") as err:
            readers.read(path, None, DEPTHS, WIDTH)
        one_line(err, path)
        assert type(err.value) is ConversionError, name  # not reported as an unsafe pickle


def test_scalar_or_non_tensor_fc_weight_is_a_format_error(tmp_path):
    for name, fc in (("scalar", torch.tensor(1.0)), ("float", 3.5), ("string", "fc")):
        path = str(tmp_path / f"{name}.pth")
        torch.save({"state_dict": {"conv1.weight": torch.zeros(1), "fc.weight": fc}}, path)
        with pytest.raises(ConversionError, match="cannot tell the checkpoint format") as err:
            readers.read(path, None, DEPTHS, WIDTH)
        one_line(err, path)


def test_wrong_files_as_a_byol_pickle_say_what_they_are(tmp_path):
    for name, (path, reason) in _not_checkpoints(tmp_path).items():
        if name == "plain.pth":
            continue
        with pytest.raises(ConversionError, match=f"not a pickle: {reason}") as err:
            readers.read(path, "byol", DEPTHS, WIDTH)
        one_line(err, path)
    zipped = str(tmp_path / "moco.pth")
    torch.save({"w": torch.zeros(1)}, zipped)
    with pytest.raises(ConversionError, match=r"not a pickle: a zip archive \(a PyTorch checkpoint\?"):
        readers.read(zipped, "byol", DEPTHS, WIDTH)


def test_mixed_key_types_in_a_pickle_are_listed_not_sorted(tmp_path):
    path = str(tmp_path / "pretrain_res50x1.pkl")
    with open(path, "wb") as handle:
        pickle.dump({1: "a", "b": 2, (3,): None}, handle)
    with pytest.raises(ConversionError, match=r"not a BYOL checkpoint \(no 'experiment_state'; found \[") as err:
        readers.read(path, "byol", DEPTHS, WIDTH)
    one_line(err, path)


@pytest.mark.parametrize("body, reason", [
    (h.EMPTY_LIST + h.put(0) + h.get(0) + h.APPEND, "cycle"),
    (h.EMPTY_LIST * 5000 + h.APPEND * 4999, "nested more than 100 levels"),
])
def test_cyclic_and_deep_pickles_are_one_line(tmp_path, body, reason):
    path = h.byol_file(str(tmp_path / "x.pkl"), body)
    with pytest.raises(ConversionError, match=reason) as err:
        readers.read(path, "byol", DEPTHS, WIDTH)
    one_line(err, path)


def test_deep_torch_structures_are_one_line(tmp_path):
    path = str(tmp_path / "deep.pth")
    nested = {}
    for _ in range(150):  # deeper than to_plain's 100 levels; torch.save's own recursion allows it
        nested = {"a": nested}
    torch.save({"state_dict": nested}, path)
    with pytest.raises(ConversionError, match="nested more than 100 levels") as err:
        readers.read(path, None, DEPTHS, WIDTH)
    one_line(err, path)


# --------------------------------------------------------------------------- environment

NO_TORCH = """
import os, sys
sys.modules["torch"] = None  # `import torch` now raises ImportError, as where it is not installed
from click.testing import CliRunner
from weights_converter import cli, safe_load

def run(command, *args):
    result = CliRunner().invoke(command, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.output

CASES = [
    ("fetch", lambda: run(cli.weights, "fetch", "moco-v2")),
    ("convert", lambda: run(cli.convert, {pth!r}, "--out", {out!r}, "--depths", "2,1,2,1", "--width", "8")),
    ("torch_load", lambda: safe_load.torch_load({pth!r})),
]
"""


def test_without_torch_say_how_to_install_it(tmp_path):
    pth = str(tmp_path / "moco.pth.tar")
    open(pth, "wb").write(b"PK\x03\x04 never opened")
    setup = NO_TORCH.format(pth=pth, out=str(tmp_path / "x.weights.h5"))
    outcomes = run_isolated(setup, env={"TFMEDBENCH_HOME": str(tmp_path / "home")})
    hint = r"install tfmedbench\[convert\] \(pip install -e '\.\[convert\]'\)"
    assert_refused(outcomes, "fetch", "UserError", path="moco-v2", match="needs torch: " + hint)
    assert_refused(outcomes, "convert", "ConversionError", path=pth, match="needs torch: " + hint)
    assert_refused(outcomes, "torch_load", "ConversionError", path=pth, match=hint)
    assert not os.path.exists(tmp_path / "home" / "downloads")  # refused before downloading


OUT_OF_MEMORY = """
from weights_converter import safe_load
CASES = [("pickle", lambda: safe_load.restricted_pickle_load({pkl!r})),
         ("torch", lambda: safe_load.torch_load({pth!r}))]
"""


def test_out_of_memory_is_one_line_naming_the_file(tmp_path):
    """A legitimate but large file in a process that cannot hold it: not an empty MemoryError."""
    pkl, pth = str(tmp_path / "big.pkl"), str(tmp_path / "big.pth")
    with open(pkl, "wb") as handle:
        pickle.dump({"w": np.zeros(32 << 20, np.float32)}, handle, protocol=4)
    torch.save({"w": torch.zeros(32 << 20)}, pth)
    outcomes = run_isolated("import torch\n" + OUT_OF_MEMORY.format(pkl=pkl, pth=pth), budget_mb=48)
    assert_refused(outcomes, "pickle", "ConversionError", path=pkl, match="out of memory while unpickling it")
    assert_refused(outcomes, "torch", "ConversionError", path=pth, match="out of memory while loading it")
