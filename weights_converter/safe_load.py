"""Loading untrusted checkpoint files without executing anything they contain.

Pickle-based files can name any importable callable and have the unpickler call it. Both loaders
here resolve globals only from an explicit allow-list and refuse everything else *before* it is
imported or called:

* PyTorch files: `torch.load(weights_only=True)` (torch's own restricted unpickler) with a small
  allow-list of the harmless non-tensor objects real releases carry (the training `argparse`
  namespace of PyContrast/MoCo-style scripts, NumPy scalars such as a saved best accuracy).
* Plain pickles (BYOL's `pretrain_res50x1.pkl`): `RestrictedUnpickler`, which rebuilds NumPy
  arrays and plain containers, and turns Haiku's mapping containers and the experiment-state
  named tuples into inert stand-ins (dicts / tuples) -- without importing jax, haiku or byol.
"""

from __future__ import annotations

import argparse
import collections
import io
import pickle
import re

import numpy as np

from weights_converter.errors import ConversionError, UnsafeFileError

REFUSAL = (
    "{path}: refused to load: it asks the unpickler for {what}, which is not on the allow-list "
    "of objects checkpoint files need; nothing from the file was executed. If you trust this "
    "file, load it yourself and re-save only its tensors (torch.save(state_dict) / numpy)."
)


# --------------------------------------------------------------------------- PyTorch files


def _numpy_globals():
    core = getattr(np, "_core", None) or np.core
    allowed = [np.dtype, core.multiarray.scalar]
    # dtype classes (numpy >= 1.25 pickles dtypes through them)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


def torch_allowed_globals():
    """Non-tensor objects real releases contain; all are inert data containers."""
    return [argparse.Namespace, *_numpy_globals()]


def torch_load(path):
    """`torch.load(weights_only=True)` with the allow-list; refusals become UnsafeFileError."""
    import torch

    try:
        with torch.serialization.safe_globals(torch_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(
            r"Unsupported (?:global|class)[: ]+([\w.]+)", message
        )
        what = f"'{found.group(1)}'" if found else "an object outside the allow-list"
        raise UnsafeFileError(REFUSAL.format(path=path, what=what)) from None
    except (RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint ({first})") from None


# --------------------------------------------------------------------------- plain pickles


def _plain_mapping(data=(), *args, **kwargs):
    """Haiku's frozendict / FlatMapping pickle as `(cls, (mapping,))`: rebuild a plain dict."""
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


def _numpy_table():
    table = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        core = getattr(np, "_core", None) or np.core
        table[(mod, "_reconstruct")] = core.multiarray._reconstruct
        table[(mod, "scalar")] = core.multiarray.scalar
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals; anything else raises, unimported."""

    EXACT = {
        **_numpy_table(),
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("haiku._src.data_structures", "frozendict"): _plain_mapping,
        ("haiku._src.data_structures", "FlatMapping"): _plain_mapping,
        ("haiku._src.data_structures", "FlatMap"): _plain_mapping,
        ("byol.byol_experiment", "_ByolExperimentState"): ExperimentState,
    }
    # Optimizer/experiment NamedTuples (e.g. byol.utils.optimizers.LarsState, optax states):
    # rebuilt as inert tuples, never imported.
    RECORD_MODULES = ("byol.", "optax.")

    def __init__(self, file, path="<pickle>"):
        super().__init__(file)
        self._path = path

    def find_class(self, module, name):
        found = self.EXACT.get((module, name))
        if found is not None:
            return found
        if module.startswith(self.RECORD_MODULES) and name.endswith("State"):
            return _record(name)
        raise UnsafeFileError(REFUSAL.format(path=self._path, what=f"'{module}.{name}'"))

    def persistent_load(self, pid):
        raise UnsafeFileError(REFUSAL.format(path=self._path, what="a persistent id"))


def _to_plain(obj):
    """Turn nested Haiku mappings into dicts (OrderedDict too); keep arrays and records."""
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, InertRecord):
        return type(obj)(*(_to_plain(v) for v in obj))
    if isinstance(obj, list):
        return [_to_plain(v) for v in obj]
    return obj


def restricted_pickle_load(path):
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), path=str(path)).load()
    except UnsafeFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ConversionError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None
    return _to_plain(obj)
