"""Hostile checkpoint files are refused cleanly: no crash, no blow-up, one line naming the file.

Every file is generated here (pickles opcode by opcode, zip bombs from repeated deflate blocks)
and loaded in a child process whose address space is capped (weights_converter.testing.isolated):
a segfault fails the test through the exit code, an allocation of gigabytes fails inside the
child. Each case must raise the loader's own error class with a one-line message naming the
file -- and, where it matters, saying why (the assertion names the expected reason).
"""

import os
import pickle
import zipfile

import numpy as np
import pytest

from weights_converter.testing import hostile as h
from weights_converter.testing.isolated import assert_refused, run_isolated

torch = pytest.importorskip("torch")

BUDGET_MB = 1024  # address space a child may add after its imports; the bombs want more

# --------------------------------------------------------------------------- plain pickles (BYOL)


def _plain_pickles(folder):
    """label -> (path, expected error class, regex the message must match)."""
    f = lambda name: str(folder / name)  # noqa: E731
    plain_f4 = h.np_dtype("f4")
    fields_state = h.tup(h.integer(3), h.text("|"), h.NONE, h.tup(h.text("a")),
                         h.dict_of(a=h.tup(h.np_dtype("f8"), h.integer(100))), h.integer(4), h.integer(1), h.integer(16))
    hidden_object = h.tup(h.integer(3), h.text("|"), h.NONE, h.tup(h.text("a")),
                          h.dict_of(a=h.tup(h.np_dtype("O8"), h.integer(0))), h.integer(8), h.integer(8), h.integer(63))
    big_dict = h.EMPTY_DICT + b"".join(h.text(f"k{i}") + h.integer(i) + h.SETITEM for i in range(10_000))
    amplify = h.EMPTY_LIST + big_dict + h.put(0) + h.APPEND + b"".join(  # dict(big) 2000 times
        h.glob("haiku._src.data_structures", "frozendict") + h.tup(h.get(0)) + h.REDUCE + h.APPEND for _ in range(2_000))
    dag = h.EMPTY_DICT + h.text("w") + h.np_array((1,), plain_f4, b"\0" * 4) + h.SETITEM
    for level in range(40):  # each level: two keys sharing the level below
        dag += h.put(level) + h.POP + h.EMPTY_DICT + h.text("a") + h.get(level) + h.SETITEM + h.text("b") + h.get(level) + h.SETITEM
    files = {
        "object_dtype_buffer": (h.np_array((4,), h.np_dtype("O8"), b"\x41" * 32), "UnsafeFileError", r"'O8'"),
        "field_past_itemsize": (h.np_array((1,), h.np_dtype("V4", fields_state), b"\0" * 4), "UnsafeFileError", "'V4'"),
        "hidden_object_field": (h.np_array((1,), h.np_dtype("V8", hidden_object), b"\0" * 8), "UnsafeFileError", "'V8'"),
        # a plain spec whose BUILD state smuggles fields in (what dtype.__setstate__ accepted)
        "plain_spec_fields_state": (h.np_array((1,), h.np_dtype("f4", fields_state), b"\0" * 4), "UnsafeFileError",
                                    "fields, a subarray"),
        "build_on_function": (h.glob("haiku._src.data_structures", "frozendict")
                              + h.tup(h.NONE, h.dict_of(__defaults__=h.tup(h.integer(7)))) + h.BUILD,
                              "UnsafeFileError", r"BUILD \(setstate\) on function"),
        "reconstruct_1gb": (h.glob(h.NUMPY, "_reconstruct") + h.tup(h.glob("numpy", "ndarray"), h.tup(h.integer(2**27)),
                            h.binbytes(b"O")) + h.REDUCE, "UnsafeFileError", "_reconstruct"),
        "ndarray_called": (h.glob("numpy", "ndarray") + h.tup(h.tup(h.integer(2**27)), h.text("O")) + h.REDUCE,
                           "UnsafeFileError", "called directly"),
        "scalar_object": (h.glob(h.NUMPY, "scalar") + h.tup(h.np_dtype("O8"), h.binbytes(b"\x41" * 8)) + h.REDUCE,
                          "UnsafeFileError", "'O8'"),
        "scalar_wrong_size": (h.glob(h.NUMPY, "scalar") + h.tup(plain_f4, h.binbytes(b"\0" * 3)) + h.REDUCE,
                              "ConversionError", "needs 4 raw bytes"),
        "short_buffer": (h.np_array((1000,), plain_f4, b"\0" * 10), "ConversionError", "needs 4000 bytes"),
        "cyclic": (h.EMPTY_LIST + h.put(0) + h.get(0) + h.APPEND, "ConversionError", "cycle"),
        "deep": (h.EMPTY_LIST * 100_000 + h.APPEND * 99_999, "ConversionError", "nested more than"),
        "container_amplification": (amplify, "ConversionError", "entries in total"),
        "dag_params": (h.byol_state(dag), "ConversionError", "more than 100,000 entries"),
        "persistent_id": (h.text("x") + h.BINPERSID, "UnsafeFileError", "persistent id"),
        "inst_opcode": (h.MARK + b"ios\nsystem\n", "UnsafeFileError", "INST"),
    }
    out = {}
    for label, (body, error, match) in files.items():
        out[label] = (h.byol_file(f(f"{label}.pkl"), body), error, match)
    tiny = f("bytearray8_2tb.pkl")
    with open(tiny, "wb") as handle:  # BYTEARRAY8 claiming 2 TB: a naive reader allocates it first
        handle.write(h.PROTO5 + b"\x96" + (2**41).to_bytes(8, "little") + h.STOP)
    out["bytearray8_2tb"] = (tiny, "ConversionError", "bytearray in a file")
    garbage = f("random.pkl")
    with open(garbage, "wb") as handle:
        handle.write(np.random.default_rng(0).bytes(4096))
    out["random_bytes"] = (garbage, "ConversionError", "not a pickle: unrecognised binary data|not a well-formed pickle")
    truncated = f("truncated.pkl")
    with open(truncated, "wb") as handle:
        handle.write((h.PROTO3 + h.dict_of(experiment_state=h.np_array((64,), h.np_dtype("f4"), b"\0" * 256)))[:150])
    out["truncated"] = (truncated, "ConversionError", "not a well-formed pickle")
    return out


def test_hostile_plain_pickles_are_refused_in_a_capped_child(tmp_path):
    files = _plain_pickles(tmp_path)
    good = str(tmp_path / "good.pkl")
    h.byol_file(good, h.dict_of(a=h.np_array((2, 3), h.np_dtype("f4"), np.arange(6, dtype="<f4").tobytes()),
                                b=h.np_array((2,), h.np_dtype("b1"), b"\x01\x00"),
                                c=h.np_array((2,), h.np_dtype("f8", h.tup(h.integer(3), h.text(">"), h.NONE, h.NONE,
                                             h.NONE, h.integer(-1), h.integer(-1), h.integer(0))),
                                             np.array([1.5, -2.0], ">f8").tobytes())))
    setup = (
        "from weights_converter import safe_load, readers\n"
        f"FILES = {dict((k, v[0]) for k, v in files.items())!r}\n"
        "CASES = [(k, (lambda p=p: readers.read(p, 'byol', (2, 1, 2, 1), 8))) for k, p in FILES.items()]\n"
        f"CASES.append(('good', lambda: safe_load.restricted_pickle_load({good!r})['experiment_state']))\n"
        "CASES.append(('defaults_intact', lambda: safe_load._plain_mapping.__defaults__))\n"
    )
    outcomes = run_isolated(setup, budget_mb=BUDGET_MB)
    for label, (path, error, match) in files.items():
        assert_refused(outcomes, label, error, path=path, match=match)
    good_value = outcomes["good"]
    assert good_value["ok"], good_value
    assert "array([[0., 1., 2.]," in good_value["value"] and "1.5, -2." in good_value["value"]
    assert outcomes["defaults_intact"] == {"ok": True, "value": "((),)"}  # the BUILD changed nothing
    assert outcomes["peak_rss_growth_mb"] < 256, outcomes["peak_rss_growth_mb"]
    print(f"HOSTILE plain pickles: {len(files)} refused; child peak RSS growth "
          f"{outcomes['peak_rss_growth_mb']:.0f} MiB")


# --------------------------------------------------------------------------- PyTorch files


def _torch_files(folder):
    f = lambda name: str(folder / name)  # noqa: E731
    zeros = {"0": b"\0" * 400}
    files = {
        "bytearray_2gb": (h.torch_zip(f("bytearray.pth"), h.dict_of(
            x=h.glob("builtins", "bytearray") + h.tup(h.integer(2**31 - 1)) + h.REDUCE)),
            "UnsafeFileError", "bytearray"),
        "tensor_ctor": (h.torch_zip(f("tensor_ctor.pth"), h.dict_of(
            x=h.glob("torch", "Tensor") + h.tup(h.integer(2**34)) + h.REDUCE)), "UnsafeFileError", "torch.Tensor"),
        "untyped_storage_ctor": (h.torch_zip(f("storage_ctor.pth"), h.dict_of(
            x=h.glob("torch", "UntypedStorage") + h.tup(h.integer(2**40)) + h.REDUCE)), "UnsafeFileError", "UntypedStorage"),
        "storage_bigger_than_record": (h.torch_zip(f("numel.pth"), h.dict_of(
            w=h.tensor(h.storage("0", 2**40), 0, (2**40,), (1,))), zeros), "ConversionError", "declares"),
        "view_past_storage": (h.torch_zip(f("stride.pth"), h.dict_of(
            w=h.tensor(h.storage("0", 100), 0, (100,), (1000,))), zeros), "ConversionError", "reaching past"),
        "expanded_view": (h.torch_zip(f("expand.pth"), h.dict_of(
            w=h.tensor(h.storage("0", 100), 0, (10**6, 10**6), (0, 0))), zeros), "ConversionError", "expanded"),
        "missing_record": (h.torch_zip(f("missing.pth"), h.dict_of(
            w=h.tensor(h.storage("7", 1), 0, (1,), (1,))), zeros), "ConversionError", "data/7"),
        "numpy_object_scalar": (h.torch_zip(f("np_scalar.pth"), h.dict_of(
            best=h.glob(h.NUMPY, "scalar") + h.tup(h.np_dtype("O8"), h.latin1(b"\x41" * 8)) + h.REDUCE)),
            "UnsafeFileError", "'O8'"),
        "numpy_object_array": (h.torch_zip(f("np_object.pth"), h.dict_of(
            a=h.np_array((4,), h.np_dtype("O8"), b"\x41" * 32, raw_op=h.latin1))), "UnsafeFileError", "'O8'"),
        "legacy_huge_storage": (h.torch_legacy(f("legacy.pth"), h.dict_of(
            w=h.tensor(h.storage("1", 2**40, legacy=True), 0, (2**40,), (1,))), ["1"], [(2**40, b"\0" * 16)]),
            "ConversionError", "MiB in total|truncated"),
    }
    real = {"structured": np.zeros(2, dtype=[("x", "<f4")]), "objects": np.array([1, None], dtype=object)}
    for name, value in real.items():  # what torch.save really writes for such arrays
        torch.save({"a": value}, f(f"real_{name}.pth"))
        files[f"real_numpy_{name}"] = (f(f"real_{name}.pth"), "UnsafeFileError", "numpy")
    torch.save({"w": torch.zeros(3), "opt": SystemExit(1)}, f("legacy_global.pth"), _use_new_zipfile_serialization=False)
    files["legacy_format_global"] = (f("legacy_global.pth"), "UnsafeFileError", "SystemExit")
    files["zip_bomb"] = (_torch_zip_bomb(f("bomb.pth")), "ConversionError", r"inflates to 1,153,433,600 bytes")
    h.write_zip(f("bad_crc.pth"), [("archive/data.pkl", h.PROTO2 + h.NONE + h.STOP, 0, 12345, 4, 0o644)])
    files["damaged_zip"] = (f("bad_crc.pth"), "ConversionError", "damaged archive .*CRC")
    return files


def _torch_zip_bomb(path):
    """A real torch.save file whose storage record is replaced by 1.1 GiB of deflated zeros
    (1.1 MB on disk, sizes in the central directory honest): torch would inflate it whole."""
    small = path + ".src"
    torch.save({"w": torch.zeros(100)}, small)
    bomb, crc = h.deflated_zeros(1100)
    members = []
    with zipfile.ZipFile(small) as archive:
        for info in archive.infolist():
            if info.filename.endswith("/data/0"):
                members.append((info.filename, bomb, zipfile.ZIP_DEFLATED, crc, 1100 << 20, 0o644))
            else:
                members.append((info.filename, archive.read(info), 0, info.CRC, info.file_size, 0o644))
    os.remove(small)
    return h.write_zip(path, members)


def test_hostile_torch_files_are_refused_in_a_capped_child(tmp_path):
    files = _torch_files(tmp_path)
    good = str(tmp_path / "good.pth")
    torch.save({"state_dict": torch.nn.BatchNorm2d(4).state_dict(), "best": np.float64(0.5),
                "arr": np.arange(3, dtype=np.int16), "view": torch.arange(10.0)[2:5]}, good)
    good_legacy = str(tmp_path / "good_legacy.pth")
    torch.save({"w": torch.ones(2, 3), "n": np.int64(7)}, good_legacy, _use_new_zipfile_serialization=False)
    setup = (
        "import torch\n"
        "from weights_converter import readers, safe_load\n"
        f"FILES = {dict((k, v[0]) for k, v in files.items())!r}\n"
        "CASES = [(k, (lambda p=p: readers.read(p, 'moco', (2, 1, 2, 1), 8))) for k, p in FILES.items()]\n"
        f"CASES.append(('good', lambda: [safe_load.torch_load({good!r})[k] for k in ('arr', 'best', 'view')]))\n"
        f"CASES.append(('good_legacy', lambda: safe_load.torch_load({good_legacy!r})))\n"
    )
    outcomes = run_isolated(setup, budget_mb=BUDGET_MB)
    for label, (path, error, match) in files.items():
        assert_refused(outcomes, label, error, path=path, match=match)
    assert outcomes["good"] == {"ok": True, "value": "[array([0, 1, 2], dtype=int16), np.float64(0.5), tensor([2., 3., 4.])]"}
    assert outcomes["good_legacy"]["ok"] and "np.int64(7)" in outcomes["good_legacy"]["value"], outcomes["good_legacy"]
    assert outcomes["peak_rss_growth_mb"] < 256, outcomes["peak_rss_growth_mb"]
    print(f"HOSTILE torch files: {len(files)} refused; child peak RSS growth "
          f"{outcomes['peak_rss_growth_mb']:.0f} MiB (the zip bomb alone inflates to 1100 MiB)")


# --------------------------------------------------------------------------- SimCLR zips + TF

SIMCLR_CHILD = """
import glob, os, shutil
import numpy as np
import tensorflow as tf
from weights_converter.readers import simclr_tf

FOLDER = {folder!r}

def good_zip():
    prefix = os.path.join(FOLDER, "src", "ResNet50_1x", "model.ckpt-225206")
    os.makedirs(os.path.dirname(prefix))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["global_step", "w"], shape_and_slices=["", ""],
                      tensors=[tf.constant(np.int64(5)), tf.constant(np.ones((64, 64), np.float32))])
    path = os.path.join(FOLDER, "good.zip")
    shutil.make_archive(path[:-4], "zip", os.path.join(FOLDER, "src"))
    return simclr_tf.resolve_prefix(path)

def truncated():
    prefix = os.path.join(FOLDER, "src", "ResNet50_1x", "model.ckpt-225206")
    cut = os.path.join(FOLDER, "cut", "model.ckpt-1")
    os.makedirs(os.path.dirname(cut))
    shutil.copy(prefix + ".index", cut + ".index")
    with open(glob.glob(prefix + ".data-*")[0], "rb") as handle:
        data = handle.read()
    with open(cut + ".data-00000-of-00001", "wb") as handle:
        handle.write(data[:1000])
    return simclr_tf.read_checkpoint(cut)

CASES = [("good", good_zip), ("truncated", truncated)]
CASES += [(k, (lambda p=p: simclr_tf.resolve_prefix(p))) for k, p in {zips!r}.items()]
CASES.append(("garbage_index", lambda: simclr_tf.read_checkpoint({garbage!r})))
"""


def _simclr_zips(folder):
    ok = b"fine"
    crc = __import__("zlib").crc32(ok)
    bomb, bomb_crc = h.deflated_zeros(1100)
    specs = {
        "bomb": [("ResNet50_1x/model.ckpt-225206.data-00000-of-00001", bomb, 8, bomb_crc, 1100 << 20, 0o100644)],
        "lying_sizes": [("ResNet50_1x/model.ckpt-225206.data-00000-of-00001", bomb, 8, bomb_crc, 100, 0o100644)],
        "zip_slip": [("ResNet50_1x/../../evil.txt", ok, 0, crc, len(ok), 0o100644)],
        "absolute": [("/tmp/evil.txt", ok, 0, crc, len(ok), 0o100644)],
        "symlink": [("ResNet50_1x/link", b"/etc/passwd", 0, __import__("zlib").crc32(b"/etc/passwd"), 11, 0o120777)],
    }
    return {label: h.write_zip(str(folder / f"{label}.zip"), members) for label, members in specs.items()}


def test_hostile_simclr_zips_and_checkpoints_in_a_capped_child(tmp_path):
    zips = _simclr_zips(tmp_path)
    garbage = str(tmp_path / "garbage" / "model.ckpt-1")
    os.makedirs(os.path.dirname(garbage))
    for suffix in (".index", ".data-00000-of-00001"):
        with open(garbage + suffix, "wb") as handle:
            handle.write(np.random.default_rng(1).bytes(3000))
    setup = SIMCLR_CHILD.format(folder=str(tmp_path), zips=zips, garbage=garbage)
    outcomes = run_isolated(setup, budget_mb=BUDGET_MB, timeout=400)
    assert outcomes["good"]["ok"] and outcomes["good"]["value"].endswith("good.unzipped/ResNet50_1x/model.ckpt-225206'"), outcomes["good"]
    assert_refused(outcomes, "bomb", "ConversionError", path=zips["bomb"], match="inflates to 1,153,433,600 bytes")
    assert_refused(outcomes, "lying_sizes", "ConversionError", path=zips["lying_sizes"], match="damaged release zip")
    for label in ("zip_slip", "absolute"):
        assert_refused(outcomes, label, "ConversionError", path=zips[label], match="unsafe path")
    assert_refused(outcomes, "symlink", "ConversionError", path=zips["symlink"], match="symbolic link")
    assert_refused(outcomes, "truncated", "ConversionError", match="declares .* bytes of tensors, its data files hold 1,000")
    assert_refused(outcomes, "garbage_index", "ConversionError", path=garbage, match=r"unreadable TF checkpoint \(\w+: .+\)")
    left = sorted(p for p in os.listdir(tmp_path) if "unzipped" in p)
    assert left == ["good.unzipped"], left  # no *.unzipped.partial, nothing from refused zips
    assert not os.path.exists(tmp_path.parent / "evil.txt") and not os.path.exists("/tmp/evil.txt")
    assert outcomes["peak_rss_growth_mb"] < 256, outcomes["peak_rss_growth_mb"]


def test_stale_partial_folder_is_replaced(tmp_path):
    """A `.partial` left by a killed extraction is not mixed into the next one."""
    from weights_converter.readers import simclr_tf

    stale = tmp_path / "rel.unzipped.partial"
    stale.mkdir()
    (stale / "stale.index").write_bytes(b"old")
    with zipfile.ZipFile(tmp_path / "rel.zip", "w") as archive:
        archive.writestr("ResNet50_1x/readme.txt", "no checkpoint here")
    with pytest.raises(Exception, match="not a TensorFlow checkpoint"):
        simclr_tf.resolve_prefix(str(tmp_path / "rel.zip"))
    assert sorted(os.listdir(tmp_path / "rel.unzipped")) == ["ResNet50_1x"]
    assert not stale.exists()


def test_pickle_writer_helpers_are_what_numpy_writes():
    """The hand-assembled array pickle is byte-for-byte the structure numpy itself emits."""
    ours = pickle.loads(h.PROTO3 + h.np_array((2,), h.np_dtype("f4"), np.array([1, 2], "<f4").tobytes()) + h.STOP)
    assert ours.dtype == np.float32 and ours.tolist() == [1.0, 2.0]
