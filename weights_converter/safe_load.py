"""Loading untrusted checkpoint files without executing anything they contain.

Pickle-based files can name any importable callable and have the unpickler call it, and even
allow-listed callables allocate what their arguments say. Both loaders here go through
`guarded_pickle` (a pure-Python unpickler that calls only allow-listed stand-ins, applies BUILD
only to inert record types and counts what it builds):

* PyTorch files: `torch_audit.audit` sizes and walks the file on inert stand-ins first, then
  `torch.load(weights_only=True)` (torch's own restricted unpickler) reads it with an allow-list
  of the harmless non-tensor objects real releases carry (the training `argparse` namespace of
  PyContrast/MoCo-style scripts; NumPy scalars and arrays, rebuilt by the guarded stand-ins
  under NumPy's names so only plain numeric dtypes with exactly-sized buffers load).
* Plain pickles (BYOL's `pretrain_res50x1.pkl`): `RestrictedUnpickler`, which rebuilds NumPy
  arrays and plain containers, and turns Haiku's mapping containers and the experiment-state
  named tuples into inert stand-ins (dicts / tuples) -- without importing jax, haiku or byol.

Every failure is one line naming the file: UnsafeFileError when the file asks for something
outside the allow-list, ConversionError when it is malformed, too large, or not a checkpoint.
"""

from __future__ import annotations

import argparse
import collections
import os
import pickle
import re

from weights_converter import guarded_pickle, torch_audit
from weights_converter.errors import ConversionError, UnsafeFileError
from weights_converter.guarded_pickle import Malformed, Refusal

REFUSAL = (
    "{path}: refused to load: it asks the unpickler for {what}, which is not on the allow-list "
    "of objects checkpoint files need; nothing from the file was executed. If you trust this "
    "file, load it yourself and re-save only its tensors (torch.save(state_dict) / numpy)."
)
INSTALL_CONVERT = "install tfmedbench[convert] (pip install -e '.[convert]')"
MAX_PICKLE_FILE_BYTES = 2 << 30  # BYOL's pickle: online + target params + LARS state


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def malformed(path, err, what="checkpoint"):
    return ConversionError(f"{path}: not a well-formed {what}: {_one_line(err)}")


# --------------------------------------------------------------------------- PyTorch files


def torch_allowed_globals():
    """What torch.load may resolve beyond tensors; NumPy names map to the guarded stand-ins."""
    allowed = [argparse.Namespace]
    for (module, name), stand_in in guarded_pickle.numpy_table().items():
        allowed.append((stand_in, f"{module}.{name}"))
    return allowed


def import_torch(path):
    try:
        import torch
    except ImportError:
        raise ConversionError(f"{path}: reading PyTorch checkpoints needs torch: {INSTALL_CONVERT}") from None
    return torch


def torch_load(path):
    """Audit, then `torch.load(weights_only=True)`; every failure is one line naming `path`."""
    torch = import_torch(path)
    try:
        torch_audit.audit(str(path))
    except Refusal as err:
        raise UnsafeFileError(REFUSAL.format(path=path, what=err.what)) from None
    except Malformed as err:
        raise malformed(path, err, "PyTorch checkpoint") from None
    except torch_audit.NotTorch as err:
        raise ConversionError(f"{path}: not a PyTorch checkpoint: {err} (expected a torch.save zip "
                              "archive or a legacy torch.save file)") from None
    except OSError as err:
        raise ConversionError(f"{path}: cannot read: {_one_line(err)}") from None
    try:
        with torch.serialization.safe_globals(torch_allowed_globals()):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        return guarded_pickle.to_plain(loaded)  # guarded NumPy stand-ins -> plain arrays
    except Malformed as err:
        raise malformed(path, err, "PyTorch checkpoint") from None
    except Refusal as err:
        raise UnsafeFileError(REFUSAL.format(path=path, what=err.what)) from None
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f"'{found.group(1)}'" if found else "an object outside the allow-list"
        raise UnsafeFileError(REFUSAL.format(path=path, what=what)) from None
    except MemoryError:
        raise ConversionError(f"{path}: out of memory while loading it; free memory and retry") from None
    except Exception as err:  # noqa: BLE001 -- torch raises assorted errors for corrupt files
        if "allocate memory" in str(err):  # torch's DefaultCPUAllocator: a RuntimeError, not MemoryError
            raise ConversionError(f"{path}: out of memory while loading it; free memory and retry") from None
        raise ConversionError(
            f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {_one_line(err)})"
        ) from None


# --------------------------------------------------------------------------- plain pickles


def _plain_mapping(data=(), *args, **kwargs):
    """Haiku's frozendict / FlatMapping pickle as `(cls, (mapping,))`: rebuild a plain dict."""
    if not isinstance(data, (dict, list, tuple)):
        raise Malformed(f"a Haiku mapping built from {type(data).__name__}")
    return dict(data)


class InertRecord(tuple):
    """Stand-in for a pickled NamedTuple (NEWOBJ calls `cls.__new__(cls, *fields)`)."""

    _fields: tuple = ()

    def __new__(cls, *args):
        return tuple.__new__(cls, args)

    def __getattr__(self, name):
        if name in self._fields:
            return self[self._fields.index(name)]
        raise AttributeError(name)

    def __setstate__(self, state):  # NamedTuples carry no state; ignore anything else inertly
        pass


def _record(name, fields=()):
    return type(name, (InertRecord,), {"_fields": tuple(fields), "__slots__": ()})


# BYOL's `byol_experiment._ByolExperimentState` field order (deepmind-research/byol).
BYOL_STATE_FIELDS = ("online_params", "target_params", "online_state", "target_state", "opt_state")
ExperimentState = _record("ExperimentState", BYOL_STATE_FIELDS)


class RestrictedUnpickler(guarded_pickle.GuardedUnpickler):
    """Resolves only allow-listed globals to guarded stand-ins; anything else raises, unimported."""

    EXACT = {
        **guarded_pickle.numpy_table(),
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("haiku._src.data_structures", "frozendict"): _plain_mapping,
        ("haiku._src.data_structures", "FlatMapping"): _plain_mapping,
        ("haiku._src.data_structures", "FlatMap"): _plain_mapping,
        ("byol.byol_experiment", "_ByolExperimentState"): ExperimentState,
    }
    # Optimizer/experiment NamedTuples (e.g. byol.utils.optimizers.LarsState, optax states):
    # rebuilt as inert tuples, never imported.
    RECORD_MODULES = ("byol.", "optax.")
    BUILDABLE = (guarded_pickle.PlainDType, guarded_pickle.SafeArray, InertRecord)

    def __init__(self, file, path="<pickle>"):
        super().__init__(file)
        self._path = path
        self._records = {}

    def find_class(self, module, name):
        module, name = self.py3_name(module, name)
        found = self.EXACT.get((module, name))
        if found is not None:
            return self.hand_out(found)
        if module.startswith(self.RECORD_MODULES) and name.endswith("State"):
            if (module, name) not in self._records:
                self._records[(module, name)] = self.hand_out(_record(name))
            return self._records[(module, name)]
        raise Refusal(f"'{module}.{name}'")


def restricted_pickle_load(path):
    size = os.path.getsize(path)
    if size > MAX_PICKLE_FILE_BYTES:
        raise ConversionError(f"{path}: {size:,} bytes, more than the {MAX_PICKLE_FILE_BYTES >> 20} MiB "
                              "a ResNet-50 pickle can be")
    with open(path, "rb") as handle:
        protocol_2_or_later = handle.read(1) == b"\x80"
    if not protocol_2_or_later:  # say what it is instead of failing on its first byte
        kind = torch_audit.kind_of(path)
        kind = "a zip archive (a PyTorch checkpoint? give its format)" if kind == "zip" else kind
        raise ConversionError(f"{path}: not a pickle: {kind}")
    try:
        with open(path, "rb") as handle:
            obj = RestrictedUnpickler(handle, path=str(path)).load()
        return guarded_pickle.to_plain(obj)
    except Refusal as err:
        raise UnsafeFileError(REFUSAL.format(path=path, what=err.what)) from None
    except Malformed as err:
        raise malformed(path, err, "pickle") from None
    except MemoryError:
        raise ConversionError(f"{path}: out of memory while unpickling it; free memory and retry") from None
