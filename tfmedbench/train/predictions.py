"""Reading a run's `predictions.npz` (untrusted input: a shared or downloaded run folder).

Members are read through an allow-list of names, dtypes and shapes, with bounded sizes, before
any array is allocated; anything else is one UserError naming the file.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from tfmedbench.errors import UserError

MAX_IMAGES = 10_000_000
MAX_CLASSES = 1024
MAX_ELEMENTS = 1 << 28  # 1 GiB of float32: a generous bound on one array
MAX_STR_BYTES = 4096  # one image id / label name
MAX_MEMBERS = 64
# name: (allowed dtype kinds, allowed ndims)
ARRAYS = {
    "image_id": ("US", (1,)),
    "label_names": ("US", (1,)),
    "scores": ("f", (1, 2)),
    "labels": ("fiub", (1, 2)),
    "dice_stats": ("fiu", (2,)),
    "dice_stats_fov": ("fiu", (2,)),
    "dice_per_image": ("f", (1,)),
}


# --------------------------------------------------------------------------- reading
def _read_member(zf, info, name):
    kinds, ndims = ARRAYS[name]
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"{name} has dtype {dtype}; expected a plain numeric/str array")
        if dtype.kind not in kinds or (dtype.kind in "US" and dtype.itemsize > MAX_STR_BYTES):
            raise ValueError(f"{name} has dtype {dtype}; allowed kinds {kinds!r}")
        if len(shape) not in ndims or any(d < 0 for d in shape):
            raise ValueError(f"{name} has shape {shape}; expected {ndims} dimension(s)")
        count = int(np.prod(shape, dtype=np.int64))
        if count > MAX_ELEMENTS or (shape and shape[0] > MAX_IMAGES):
            raise ValueError(f"{name} has shape {shape}, over the size limit")
        nbytes = count * dtype.itemsize
        data = fh.read(nbytes)
        if len(data) != nbytes:
            raise ValueError(f"{name} is truncated ({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_arrays(path):
    """The allow-listed arrays of a predictions.npz, as {name: ndarray} (others never read)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no predictions file (each finished run writes predictions.npz)")
    try:
        arrays = {}
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise ValueError(f"{len(infos)} members (at most {MAX_MEMBERS})")
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else None
                if name in ARRAYS:  # other members are ignored, never read
                    arrays[name] = _read_member(zf, info, name)
        return arrays
    except (ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile, zlib.error,
            NotImplementedError, RuntimeError) as err:  # fmt: skip
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path}: not a valid predictions file ({msg})") from None
