"""Writers of hostile checkpoint files: pickles assembled opcode by opcode, zips by hand.

Nothing here is a real release; each file is built to hit one specific weakness of a naive
loader (see weights_converter/hostile_test.py for what each one must provoke instead).
"""

from __future__ import annotations

import pickle
import struct
import zipfile
import zlib

# ----------------------------------------------------------------------------- pickle opcodes
PROTO2, PROTO3, PROTO5 = b"\x80\x02", b"\x80\x03", b"\x80\x05"
STOP, REDUCE, BUILD, NONE, FALSE, TRUE = b".", b"R", b"b", b"N", b"\x89", b"\x88"
EMPTY_DICT, EMPTY_LIST, APPEND, SETITEM, MARK, TUPLE, POP = b"}", b"]", b"a", b"s", b"(", b"t", b"0"
BINPERSID = b"Q"


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value):
    raw = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def binbytes(value):
    return b"B" + struct.pack("<I", len(value)) + value


def latin1(value):
    """Bytes the protocol-2 way (what torch's unpickler understands): _codecs.encode(str, latin1)."""
    return glob("_codecs", "encode") + tup(text(value.decode("latin1")), text("latin1")) + REDUCE


def integer(value):
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = pickle.encode_long(value)
    return b"\x8a" + bytes([len(raw)]) + raw


def tup(*items):
    return MARK + b"".join(items) + TUPLE


def put(index):
    return b"r" + struct.pack("<I", index)


def get(index):
    return b"j" + struct.pack("<I", index)


def dict_of(**items):
    return EMPTY_DICT + b"".join(text(k) + v + SETITEM for k, v in items.items())


NUMPY = "numpy.core.multiarray"


def np_dtype(spec, state=None):
    """numpy.dtype(spec, False, True) + BUILD(state); the plain state unless given."""
    state = state or tup(integer(3), text("<"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0))
    return glob("numpy", "dtype") + tup(text(spec), FALSE, TRUE) + REDUCE + state + BUILD


def np_array(shape, dtype, raw, raw_op=binbytes):
    """numpy's own array pickle: _reconstruct(ndarray, (0,), b'b') + BUILD((1, shape, dtype, F, raw))."""
    empty = glob(NUMPY, "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(0)), raw_op(b"b")) + REDUCE
    return empty + tup(integer(1), tup(*map(integer, shape)), dtype, FALSE, raw_op(raw)) + BUILD


def byol_file(path, experiment_state, proto=PROTO3):
    """{'experiment_state': <experiment_state>} as BYOL's pickle names it."""
    with open(path, "wb") as handle:
        handle.write(proto + dict_of(experiment_state=experiment_state) + STOP)
    return path


def byol_state(online_params, online_state=EMPTY_DICT):
    fields = (online_params, EMPTY_DICT, online_state, EMPTY_DICT, EMPTY_DICT)
    return glob("byol.byol_experiment", "_ByolExperimentState") + tup(*fields) + REDUCE


# ----------------------------------------------------------------------------- torch pickles


def storage(key, numel, kind="FloatStorage", legacy=False):
    """A persistent storage id: zip format (5 fields) or legacy (+ view metadata, here None)."""
    view = NONE if legacy else b""
    return tup(text("storage"), glob("torch", kind), text(key), text("cpu"), integer(numel), view) + BINPERSID


def tensor(storage_op, offset, size, stride):
    hooks = glob("collections", "OrderedDict") + tup() + REDUCE
    args = tup(storage_op, integer(offset), tup(*map(integer, size)), tup(*map(integer, stride)), FALSE, hooks)
    return glob("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


def torch_zip(path, pickle_body, records=None):
    """A torch.save-layout zip around a hand-written data.pkl (protocol 2) and raw records."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", PROTO2 + pickle_body + STOP)
        archive.writestr("archive/byteorder", "little")
        for key, raw in (records or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")
    return path


MAGIC = 0x1950A86A20F9469CFC6C


def torch_legacy(path, pickle_body, keys, raw_storages):
    """The pre-1.6 torch.save layout: magic, protocol, sys_info, object, keys, raw storages."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    with open(path, "wb") as handle:
        for header in (MAGIC, 1001, sys_info):
            pickle.dump(header, handle, protocol=2)
        handle.write(PROTO2 + pickle_body + STOP)
        pickle.dump(list(keys), handle, protocol=2)
        for numel, raw in raw_storages:
            handle.write(struct.pack("<q", numel) + raw)
    return path


# ----------------------------------------------------------------------------- zips by hand

ZERO_MIB = bytes(1 << 20)


def deflated_zeros(mib, wbits=-zlib.MAX_WBITS):
    """A deflate stream of `mib` MiB of zeros (~1 KB per MiB) and its CRC-32, built in ~1 s.

    After Z_FULL_FLUSH the compressor holds no history, so the block for one MiB of zeros is
    the same every time: repeating it is a valid stream, no gigabyte is ever materialized.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = packer.compress(ZERO_MIB) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(ZERO_MIB) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(ZERO_MIB, crc)
    return first + block * (mib - 1) + packer.flush(), crc


def write_zip(path, members):
    """members: (name, stored bytes, method, crc, declared uncompressed size, unix mode)."""
    body, central = bytearray(), bytearray()
    for name, data, method, crc, size, mode in members:
        raw = name.encode()
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(raw), 0)
        body += raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, 0, method, 0, 0, crc, len(data),
                               size, len(raw), 0, 0, 0, 0, mode << 16, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    with open(path, "wb") as handle:
        handle.write(bytes(body + central + end))
    return path
