"""Pre-flight of a PyTorch checkpoint, run before `torch.load` may allocate anything.

`torch.load(weights_only=True)` executes nothing it does not allow-list, but what it allows can
still allocate whatever a tiny file asks for: a deflated zip member is inflated to the size its
entry claims (2 MB on disk -> 2.3 GB), `builtins.bytearray(n)` and `torch.UntypedStorage(n)` are
allow-listed calls, and a legacy (pre-1.6) file's storages are allocated at the sizes its pickle
declares before a byte of data is read. So every file is first:

1. sniffed: a torch.save zip, a legacy torch.save file (its first pickle is torch's magic
   number), or else named for what it is (HTML page, text, tar, something else);
2. sized from the zip central directory -- per-member and total uncompressed bytes -- before
   anything is inflated;
3. walked with `TorchPickleAudit`, the guarded pure-Python unpickler, on inert stand-ins: every
   global must be one real releases use, every storage must exist in the file with at least the
   bytes it declares, every tensor view must lie inside its storage, and the totals are capped.

Caps (why these numbers): the largest tensor the paper's releases carry is PyContrast's
InsDis/PIRL memory bank, 1.28 M images x 128 float32 = 655 MB; a whole release (model, EMA or
key-encoder copy, optimizer state, queue or memory bank) stays well under 2 GiB.
"""

from __future__ import annotations

import collections
import os
import struct
import tarfile
import zipfile
import zlib

from weights_converter.guarded_pickle import (
    Budget,
    GuardedUnpickler,
    Malformed,
    PlainDType,
    Refusal,
    SafeArray,
    as_text,
    element_count,
    load_bytes,
    numpy_table,
)

MAX_FILE_BYTES = 2 << 30  # a whole checkpoint file
MAX_MEMBER_BYTES = 1 << 30  # one zip member, uncompressed (the 655 MB memory bank fits)
MAX_TOTAL_BYTES = 2 << 30  # all zip members / all declared storages, uncompressed
MAX_TENSOR_BYTES = 2 << 30  # all tensor views together (views may share storage)
MAX_PICKLE_BYTES = 64 << 20  # data.pkl: a state dict's structure is well under 1 MB
MAX_MEMBERS = 200_000  # records in the zip (one per storage)

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization's legacy-format magic
LEGACY_PROTOCOL = 1001
_SIZES = {"Float": 4, "Double": 8, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2,
          "Char": 1, "Byte": 1, "Bool": 1}
STORAGE_SIZES = {f"{k}Storage": v for k, v in _SIZES.items()} | {"UntypedStorage": 1}
DTYPE_SIZES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
               "int16": 2, "int8": 1, "uint8": 1, "bool": 1}


class Marker:
    """An inert, non-callable stand-in for a torch class or dtype the pickle names."""

    def __init__(self, name, size=None):
        self.name, self.size = name, size

    def __repr__(self):
        return self.name


class StorageRef:
    def __init__(self, key, numel, size):
        self.key, self.numel, self.size = key, numel, size


class TensorRef:
    def __init__(self, numel):
        self.numel = numel


class NamespaceStub:
    """argparse.Namespace (a training script's options): NEWOBJ + BUILD with its __dict__."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise Malformed("argparse.Namespace state is not a dict")


class OrderedDictStub(collections.OrderedDict):
    """state_dict() OrderedDicts carry a `_metadata` attribute, restored by BUILD."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise Malformed("OrderedDict state is not a dict")


TENSOR, PARAMETER = Marker("torch.Tensor"), Marker("torch.nn.parameter.Parameter")


def _ints(value, what):
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise Malformed(f"a tensor {what} {value!r:.60} that is not a tuple of non-negative ints")
    return value


class TorchPickleAudit(GuardedUnpickler):
    """Walks a torch pickle on stand-ins; `storage_sizes` maps zip record keys -> bytes."""

    BUILDABLE = (PlainDType, SafeArray, NamespaceStub, OrderedDictStub)

    def __init__(self, file, storage_sizes=None, budget=None):
        super().__init__(file, budget or Budget(max_bytes=MAX_TOTAL_BYTES))
        self.encoding = "utf-8"  # as torch.load
        self.storage_sizes = storage_sizes
        self.storages = {}  # key -> (numel, element size)
        self.tensor_bytes = 0
        self._table = self._globals()

    def _globals(self):
        calls = {
            "collections.OrderedDict": OrderedDictStub, "argparse.Namespace": NamespaceStub,
            "torch._utils._rebuild_tensor": self._rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": self._rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": self._rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": self._rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": self._rebuild_parameter,
            "torch._tensor._rebuild_from_type_v2": self._rebuild_from_type_v2,
            "torch.Size": lambda dims=(): _ints(tuple(dims), "size"),
            "torch.device": lambda *args: Marker("device"),
            "_codecs.encode": _encode, "builtins.bytearray": _bytearray, "builtins.set": set,
            "builtins.complex": complex,
        }
        calls.update({f"{m}.{n}": f for (m, n), f in numpy_table().items()})
        table = {name: self.hand_out(f) for name, f in calls.items()}
        for module in ("torch", "torch.cuda"):
            table.update({f"{module}.{n}": Marker(f"{module}.{n}", s) for n, s in STORAGE_SIZES.items()})
        table.update({f"torch.{n}": Marker(f"torch.{n}", s) for n, s in DTYPE_SIZES.items()})
        table.update({"torch.Tensor": TENSOR, "torch.nn.parameter.Parameter": PARAMETER})
        return table

    def find_class(self, module, name):
        full = "{}.{}".format(*self.py3_name(module, name))
        if full in self._table:
            return self._table[full]
        shown = full[len("builtins."):] if full.startswith("builtins.") else full
        raise Refusal(f"'{shown}'")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or as_text(pid[0]) != "storage":
            raise Refusal("a persistent id that is not a tensor storage")
        legacy = self.storage_sizes is None
        if len(pid) != (6 if legacy else 5):
            raise Malformed(f"a storage reference with {len(pid)} fields")
        stype, key, _location, numel = pid[1:5]
        key = as_text(key)
        if not isinstance(stype, Marker) or stype.name.rsplit(".", 1)[-1] not in STORAGE_SIZES:
            raise Refusal(f"storage type {stype!r:.40}")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise Malformed("a storage reference with a bad key or element count")
        if key not in self.storages:
            nbytes = numel * stype.size
            if not legacy:
                have = self.storage_sizes.get(key)
                if have is None or have < nbytes:
                    raise Malformed(f"storage data/{key} declares {nbytes} bytes, the archive holds {have or 0}")
            self.budget.spend_bytes(nbytes)
            self.storages[key] = (numel, stype.size)
        ref = StorageRef(key, self.storages[key][0], self.storages[key][1])
        view = pid[5] if legacy else None
        if view is not None:
            if not isinstance(view, tuple) or len(view) != 3:
                raise Malformed("a storage view that is not (key, offset, size)")
            offset, size = _ints(tuple(view[1:]), "storage view")
            if offset + size > ref.numel:
                raise Malformed(f"a storage view [{offset}, {offset + size}) past its {ref.numel} elements")
            ref = StorageRef(as_text(view[0]), size, ref.size)
        return ref

    def _tensor(self, storage, offset, size, stride, element_size=None):
        if not isinstance(storage, StorageRef):
            raise Malformed("a tensor rebuilt from something that is not a storage")
        if type(offset) is not int or offset < 0:
            raise Malformed("a tensor with a negative or non-integer storage offset")
        size, stride = _ints(tuple(size), "size"), _ints(tuple(stride), "stride")
        element_size = element_size or storage.size
        capacity = storage.numel * storage.size // element_size
        numel = element_count(size)
        if len(size) != len(stride):
            raise Malformed(f"a tensor of size {size} with stride {stride}")
        if numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= capacity:
            raise Malformed(f"a tensor view {size} (stride {stride}, offset {offset}) reaching past its storage of {capacity} elements")
        if numel > capacity:
            raise Malformed(f"an expanded tensor view {size} larger than its storage of {capacity} elements")
        self.tensor_bytes += numel * element_size
        if self.tensor_bytes > MAX_TENSOR_BYTES:
            raise Malformed(f"its tensors exceed {MAX_TENSOR_BYTES >> 20} MiB in total")
        return TensorRef(numel)

    def _rebuild_tensor(self, storage, offset, size, stride):
        return self._tensor(storage, offset, size, stride)

    def _rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        return self._tensor(storage, offset, size, stride)

    def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        name = dtype.name[len("torch."):] if isinstance(dtype, Marker) else None
        if name not in DTYPE_SIZES:
            raise Refusal(f"tensor dtype {dtype!r:.40}")
        return self._tensor(storage, offset, size, stride, DTYPE_SIZES[name])

    def _rebuild_parameter(self, data, requires_grad=False, hooks=None, state=None):
        if not isinstance(data, TensorRef):
            raise Malformed("a Parameter rebuilt from something that is not a tensor")
        return data

    def _rebuild_from_type_v2(self, func, new_type, args, state=None):
        if new_type not in (TENSOR, PARAMETER):
            raise Refusal(f"a tensor subclass {new_type!r:.40}")
        return self._call(func, args)


def _encode(text, encoding="utf-8"):
    """`_codecs.encode(str, 'latin1')`: how protocol-2 pickles spell bytes."""
    if not isinstance(text, str) or str(encoding).lower() not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise Malformed("_codecs.encode on something other than a string")
    return text.encode(encoding)


def _bytearray(data=b"", encoding=None):
    if isinstance(data, str) and encoding is not None:
        data = _encode(data, encoding)
    if not isinstance(data, (bytes, bytearray)):  # bytearray(n) would allocate n bytes
        raise Refusal("bytearray(...) of something other than bytes")
    return bytearray(data)


# ----------------------------------------------------------------------------- whole files


def _head(path, n=4096):
    with open(path, "rb") as handle:
        return handle.read(n)


def kind_of(path):
    """'zip' | 'legacy' | a phrase saying what the file is instead ('an HTML page', ...)."""
    head = _head(path)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04") and zipfile.is_zipfile(path):
        return "zip"
    if head[:1] == b"\x80":
        with open(path, "rb") as handle:
            try:
                if GuardedUnpickler(handle).load() == MAGIC_NUMBER:
                    return "legacy"
            except (Refusal, Malformed):
                pass
        return "a pickle that is not torch.save output"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in stripped[:1024]:
        return "an HTML page (the link served a web page -- a login, consent or error page)"
    if tarfile.is_tarfile(path):
        return "a tar archive (PyTorch < 0.4 checkpoints are not supported)"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "unrecognised binary data"


def audit_zip(path):
    """Sizes from the central directory (nothing inflated yet), then the pickle on stand-ins."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise Malformed(f"{len(infos)} zip members (more than {MAX_MEMBERS})")
        total = 0
        for info in infos:
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Malformed(f"zip member {info.filename} uses compression method {info.compress_type}")
            if info.file_size > MAX_MEMBER_BYTES:
                raise Malformed(f"zip member {info.filename} inflates to {info.file_size:,} bytes "
                                f"(cap {MAX_MEMBER_BYTES >> 20} MiB per member)")
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise Malformed(f"its zip members inflate to {total:,} bytes (cap {MAX_TOTAL_BYTES >> 20} MiB)")
        pickles = [i for i in infos if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
        if len(pickles) != 1:
            raise Malformed("a zip archive without exactly one data.pkl (not torch.save output)")
        if pickles[0].file_size > MAX_PICKLE_BYTES:
            raise Malformed(f"data.pkl of {pickles[0].file_size:,} bytes (cap {MAX_PICKLE_BYTES >> 20} MiB)")
        prefix = pickles[0].filename[: -len("data.pkl")] + "data/"
        sizes = {i.filename[len(prefix):]: i.file_size for i in infos if i.filename.startswith(prefix)}
        audit = load_bytes(archive.read(pickles[0]), _Run, storage_sizes=sizes)
    return audit


class _Run(TorchPickleAudit):
    """`load()` returns the audit itself (the walked object is made of stand-ins)."""

    def load(self):
        super().load()
        return self


def audit_legacy(path, size):
    """Legacy layout: magic, protocol, sys_info, the object, storage keys, then raw storages."""
    with open(path, "rb") as handle:
        for expected in (MAGIC_NUMBER, LEGACY_PROTOCOL):
            if GuardedUnpickler(handle).load() != expected:
                raise Malformed("a legacy torch.save header with the wrong magic or protocol")
        if not isinstance(GuardedUnpickler(handle).load(), dict):
            raise Malformed("a legacy torch.save file without its sys_info record")
        audit = _Run(handle).load()
        keys = GuardedUnpickler(handle).load()
        if not isinstance(keys, list) or set(map(as_text, keys)) != set(audit.storages):
            raise Malformed("legacy storage keys that do not match the storages its pickle uses")
        position = handle.tell()
        for key in map(as_text, keys):
            numel, element_size = audit.storages[key]
            handle.seek(position)
            header = handle.read(8)
            if len(header) != 8 or struct.unpack("<q", header)[0] != numel:
                raise Malformed(f"storage {key}: its data does not match the {numel} elements declared")
            position += 8 + numel * element_size
            if position > size:
                raise Malformed(f"truncated: storage {key} ends at byte {position:,} of {size:,}")
    return audit


def audit(path):
    """Raise Refusal / Malformed / NotTorch for anything torch.load should not be given."""
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise Malformed(f"{size:,} bytes (cap {MAX_FILE_BYTES >> 20} MiB for one checkpoint)")
    kind = kind_of(path)
    try:
        if kind == "zip":
            return audit_zip(path)
        if kind == "legacy":
            return audit_legacy(path, size)
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error) as err:
        raise Malformed(f"a damaged archive ({type(err).__name__}: {err})") from None
    raise NotTorch(kind)


class NotTorch(Exception):
    """The file is not a PyTorch checkpoint at all; the message says what it is."""
