"""A pickle reader that executes nothing and allocates only what the file pays for.

Both checkpoint loaders build on it: the BYOL reader (`safe_load.RestrictedUnpickler`) to rebuild
NumPy arrays and plain containers, and the PyTorch pre-flight (`torch_audit`), which walks a
torch file's pickle with inert stand-ins before `torch.load` may touch it.

Why not `pickle.Unpickler` with a `find_class` allow-list: an allow-list of *names* is not
enough. The C unpickler applies BUILD (`__setstate__` or `__dict__` updates) to whatever is on
the stack -- an allow-listed function's `__defaults__` included -- and NumPy's own
reconstruction functions trust their arguments: `_reconstruct(ndarray, (2**27,), 'O')` allocates
1 GiB from a 48-byte file, an object dtype with a caller-supplied buffer turns file bytes into
raw pointers (a segfault when converted), and `dtype.__setstate__` accepts field offsets past the
itemsize (heap bytes read out of bounds). So this reader:

* is the pure-Python `pickle._Unpickler` with REDUCE, NEWOBJ, INST/OBJ and BUILD replaced:
  a call is allowed only on callables the subclass's `find_class` handed out, BUILD only on the
  inert record types (`BUILDABLE`);
* replaces NumPy's reconstruction by `PlainDType` / `SafeArray` / `safe_scalar`, which accept
  only plain numeric dtypes (bool, ints, uints, float16/32/64; no fields, subarrays, objects,
  strings, voids) and a raw buffer of exactly shape x itemsize bytes;
* never pre-allocates from a length field (BYTEARRAY8 and every read are bounded by the bytes
  left in the file) and counts what it builds (array bytes, container entries) against caps;
* `to_plain` walks the result with a depth limit, refuses cycles and keeps shared sub-objects
  shared (a DAG of 60 shared levels must not expand into 2**60 nodes).

Cost, measured on a shared 2-core machine: a 294 MiB BYOL-layout ResNet-50 pickle loads in
0.15 s (the C unpickler with a plain find_class: 0.08 s); the torch pre-flight walks a 212 MiB
MoCo training checkpoint in 0.12 s (zip) / 0.15 s (legacy), next to 0.29 s for torch.load.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct

import numpy as np

# Caps for one pickle. A ResNet-50 release with EMA/target copies and optimizer state is a few
# hundred MB of arrays; BYOL's pretrain_res50x1.pkl (online + target params, LARS momentum) is
# the largest plain pickle we read.
MAX_ARRAY_BYTES = 2 << 30  # total bytes of all arrays rebuilt from one pickle
MAX_ENTRIES = 1_000_000  # items copied by calls (dict(mapping) ...); a release has < 10k tensors
MAX_DEPTH = 100  # nesting of the loaded structure (real checkpoints: < 10)
MAX_NDIM = 32  # NumPy's own limit is 64; no weight has more than 5 dimensions

# The only dtypes a checkpoint needs, by the spec strings NumPy pickles them under ('f4', ...).
PLAIN_DTYPES = {
    "b1": np.bool_, "i1": np.int8, "i2": np.int16, "i4": np.int32, "i8": np.int64,
    "u1": np.uint8, "u2": np.uint16, "u4": np.uint32, "u8": np.uint64,
    "f2": np.float16, "f4": np.float32, "f8": np.float64,
}


class Refusal(Exception):
    """A construct outside the allow-list; `what` names it. Callers add the file name."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


class Malformed(Exception):
    """Not a well-formed checkpoint pickle (wrong arguments, sizes that do not add up)."""


class Budget:
    """Counts what one load builds; raising Malformed past a cap keeps a tiny file tiny."""

    def __init__(self, max_bytes=MAX_ARRAY_BYTES, max_entries=MAX_ENTRIES):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.bytes = self.entries = 0

    def spend_bytes(self, n):
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise Malformed(f"its arrays exceed {self.max_bytes >> 20} MiB in total")

    def spend_entries(self, n):
        self.entries += n
        if self.entries > self.max_entries:
            raise Malformed(f"its containers exceed {self.max_entries:,} entries in total")


# ----------------------------------------------------------------------------- NumPy stand-ins


def as_text(value):
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value


class PlainDType:
    """What `numpy.dtype` resolves to: a plain numeric dtype, validated before NumPy sees it.

    NumPy pickles a dtype as `dtype('f4', False, True)` followed by BUILD with
    `(3, '<', None, None, None, -1, -1, 0)` (version, byte order, subarray, names, fields,
    elsize, alignment, flags); anything else (structured, subarray, object, string) is refused.
    """

    __slots__ = ("spec", "byteorder")

    def __new__(cls, spec=None, align=False, copy=False, *rest):
        spec = as_text(spec)
        if rest or not isinstance(spec, str) or spec not in PLAIN_DTYPES:
            raise Refusal(f"numpy dtype {spec!r} (only bool, ints, uints, float16/32/64)")
        if not isinstance(align, (bool, int)) or not isinstance(copy, (bool, int)):
            raise Malformed("numpy dtype with non-boolean flags")
        self = object.__new__(cls)
        self.spec, self.byteorder = spec, "="
        return self

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise Refusal("a numpy dtype state of an unknown version")
        byteorder = as_text(state[1])
        subarray, names, fields, elsize, alignment, flags = state[2:8]
        metadata = state[8] if len(state) == 9 else None
        if (subarray, names, fields, metadata) != (None, None, None, None) or (elsize, alignment) != (-1, -1):
            raise Refusal("a numpy dtype with fields, a subarray or metadata")
        if byteorder not in ("<", ">", "=", "|") or not isinstance(flags, int) or flags != 0:
            raise Refusal(f"a numpy dtype with byte order {byteorder!r} and flags {flags!r}")
        self.byteorder = byteorder

    def numpy(self):
        dtype = np.dtype(PLAIN_DTYPES[self.spec])
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype

    def __reduce__(self):  # never pickled back out as something else
        raise TypeError("PlainDType is a load-time stand-in")


def _shape(value):
    if not isinstance(value, tuple) or len(value) > MAX_NDIM:
        raise Malformed(f"array shape {value!r:.80} is not a tuple of at most {MAX_NDIM} sizes")
    if not all(type(n) is int and n >= 0 for n in value):
        raise Malformed(f"array shape {value!r:.80} has a negative or non-integer size")
    return value


def element_count(shape):
    count = 1
    for n in shape:  # exact Python integers: no int64 wrap-around
        count *= n
    return count


class SafeArray(np.ndarray):
    """What NumPy's `_reconstruct(ndarray, (0,), b'b')` + BUILD produce, checked first.

    `numpy.ndarray` itself resolves to this class, whose constructor refuses: only the
    reconstruction path (an empty array, then `__setstate__` with an exactly-sized buffer) works.
    """

    budget = None  # set per load by the unpickler (class attribute: one load at a time per class)

    def __new__(cls, *args, **kwargs):
        raise Refusal("numpy.ndarray(...) called directly (it allocates what its arguments say)")

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise Malformed("numpy array state is not a 4- or 5-tuple")
        if len(state) == 5:
            if state[0] != 1:
                raise Malformed(f"numpy array state version {state[0]!r}")
            state = state[1:]
        shape, dtype, fortran, raw = state
        if not isinstance(dtype, PlainDType):
            raise Refusal("a numpy array whose dtype is not a plain numeric dtype")
        if not isinstance(raw, (bytes, bytearray)):
            raise Refusal("a numpy array whose data is not a raw byte buffer (object array)")
        real = dtype.numpy()
        shape = _shape(shape)
        expected = element_count(shape) * real.itemsize
        if len(raw) != expected:
            raise Malformed(f"numpy array {shape} of {real} needs {expected} bytes, the file has {len(raw)}")
        if SafeArray.budget is not None:
            SafeArray.budget.spend_bytes(expected)
        super().__setstate__((1, shape, real, bool(fortran), bytes(raw)))


def safe_reconstruct(cls, shape, typecode):
    """`numpy.core.multiarray._reconstruct` as NumPy pickles use it: an empty placeholder."""
    if cls is not SafeArray or shape != (0,) or as_text(typecode) != "b":
        raise Refusal("numpy _reconstruct with arguments NumPy never pickles")
    return np.ndarray.__new__(SafeArray, (0,), np.int8)


def safe_scalar(dtype, data=None):
    """`numpy.core.multiarray.scalar(dtype, bytes)`: a plain numeric scalar of exactly one item."""
    if not isinstance(dtype, PlainDType):
        raise Refusal("a numpy scalar whose dtype is not a plain numeric dtype")
    real = dtype.numpy()
    if not isinstance(data, (bytes, bytearray)) or len(data) != real.itemsize:
        raise Malformed(f"numpy {real} scalar needs {real.itemsize} raw bytes")
    return np.frombuffer(bytes(data), dtype=real, count=1)[0]


def to_numpy_array(value):
    """A SafeArray -> plain ndarray (a view); anything else unchanged."""
    return value.view(np.ndarray) if isinstance(value, SafeArray) else value


def numpy_table():
    """(module, name) -> stand-in, for both NumPy 1.x and 2.x module paths."""
    table = {("numpy", "ndarray"): SafeArray, ("numpy", "dtype"): PlainDType}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = safe_reconstruct
        table[(module, "scalar")] = safe_scalar
    return table


# ----------------------------------------------------------------------------- the unpickler


def _describe(obj):
    """A short name for an object in a refusal (never a repr of a large structure)."""
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    name = getattr(obj, "name", None)  # the torch audit's inert markers carry the global's name
    return name if isinstance(name, str) else f"a {type(obj).__name__}"


class BoundedFile:
    """A read-only file whose reads never ask for more than is left (no pre-allocation)."""

    def __init__(self, handle, size=None):
        self._handle = handle
        start = handle.tell()
        if size is None:
            size = os.fstat(handle.fileno()).st_size - start
        self._end = start + size

    def left(self):
        return max(0, self._end - self._handle.tell())

    def read(self, n=-1):
        n = self.left() if n is None or n < 0 else min(n, self.left())
        return self._handle.read(n)

    def readline(self):
        return self._handle.readline(self.left())

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class GuardedUnpickler(pickle._Unpickler):  # noqa: SLF001 -- the pure-Python unpickler, on purpose
    """Subclasses define `find_class` (return only allow-listed stand-ins) and `BUILDABLE`."""

    BUILDABLE: tuple = (PlainDType, SafeArray)
    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: SLF001

    def __init__(self, file, budget=None):
        self._bounded = file if isinstance(file, BoundedFile) else BoundedFile(file)
        super().__init__(self._bounded, encoding="bytes")
        self.budget = budget or Budget()
        self._handed_out = {}

    def hand_out(self, obj):
        """Register a callable from `find_class` as one REDUCE/NEWOBJ may call."""
        self._handed_out[id(obj)] = obj
        return obj

    def _callable(self, obj, opcode):
        if id(obj) not in self._handed_out:
            raise Refusal(f"{opcode} of {_describe(obj)}, which is not an allow-listed callable")
        return obj

    def load(self):
        previous, SafeArray.budget = SafeArray.budget, self.budget
        try:
            return super().load()
        except (Refusal, Malformed):
            raise
        except RecursionError:
            raise Malformed("nested too deeply") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, struct.error, UnicodeDecodeError, OverflowError) as err:
            raise Malformed(f"{type(err).__name__}: {err}") from None
        finally:
            SafeArray.budget = previous

    def _call(self, func, args, kwargs=None):
        func = self._callable(func, "a call")
        if not isinstance(args, tuple):
            raise Malformed("call arguments are not a tuple")
        for arg in args:
            if isinstance(arg, (dict, list, tuple, set, frozenset)):
                self.budget.spend_entries(len(arg))  # dict(mapping) etc. copy their argument
        return func(*args, **(kwargs or {}))

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if kwargs:
            raise Refusal("NEWOBJ_EX with keyword arguments")
        self.append(self._new(cls, args))

    def _new(self, cls, args):
        cls = self._callable(cls, "NEWOBJ")
        if not isinstance(cls, type) or not isinstance(args, tuple):
            raise Malformed("NEWOBJ on a non-class")
        self.budget.spend_entries(len(args))
        return cls.__new__(cls, *args)

    def load_inst(self):
        raise Refusal("a protocol-0 INST instruction")

    def load_obj(self):
        raise Refusal("a protocol-1 OBJ instruction")

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, self.BUILDABLE):
            raise Refusal(f"BUILD (setstate) on {type(inst).__name__}")
        inst.__setstate__(state)

    def load_bytearray8(self):
        (size,) = struct.unpack("<Q", self.read(8))
        if size > self._bounded.left() + (1 << 20):  # the bytes must be in the file
            raise Malformed(f"a {size}-byte bytearray in a file with {self._bounded.left()} bytes left")
        self.append(bytearray(self.read(size)))

    def persistent_load(self, pid):
        raise Refusal("a persistent id")

    def py3_name(self, module, name):
        """Python 2 names (protocol < 3, e.g. `__builtin__.eval`) as Python 3 spells them."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                return _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        return module, name

    def find_class(self, module, name):  # subclasses override
        raise Refusal("'{}.{}'".format(*self.py3_name(module, name)))

    for _code, _method in (
        (pickle.REDUCE, load_reduce), (pickle.NEWOBJ, load_newobj), (pickle.NEWOBJ_EX, load_newobj_ex),
        (pickle.INST, load_inst), (pickle.OBJ, load_obj), (pickle.BUILD, load_build),
        (pickle.BYTEARRAY8, load_bytearray8),
    ):
        dispatch[_code[0]] = _method
    del _code, _method


def load_bytes(data, unpickler_cls, **kwargs):
    """Unpickle an in-memory pickle (e.g. a zip member) with `unpickler_cls`."""
    handle = io.BytesIO(data)
    bounded = BoundedFile(handle, len(data))
    return unpickler_cls(bounded, **kwargs).load()


# ----------------------------------------------------------------------------- after loading


def to_plain(obj, plain_mapping_types=(dict,), leaf=to_numpy_array, max_depth=MAX_DEPTH):
    """Mappings -> dict, lists kept, tuples (and tuple subclasses) rebuilt, arrays via `leaf`.

    Shared sub-objects stay shared (memo by id); a cycle or nesting deeper than `max_depth`
    raises Malformed instead of RecursionError.
    """
    memo, active = {}, set()

    def walk(value, depth):
        key = id(value)
        if key in memo:
            return memo[key]
        if key in active:
            raise Malformed("it contains a cycle (a container holding itself)")
        if depth > max_depth:
            raise Malformed(f"it is nested more than {max_depth} levels deep")
        if isinstance(value, plain_mapping_types):
            active.add(key)
            out = {k: walk(v, depth + 1) for k, v in value.items()}
        elif isinstance(value, list):
            active.add(key)
            out = [walk(v, depth + 1) for v in value]
        elif isinstance(value, tuple):
            active.add(key)
            items = [walk(v, depth + 1) for v in value]
            out = type(value)(*items) if hasattr(type(value), "_fields") else tuple(items)
        else:
            return leaf(value)
        active.discard(key)
        memo[key] = out
        return out

    return walk(obj, 0)
