"""Small file helpers: atomic writes (readers never see half a file), sha256 digests, versions."""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask_mode(mode=0o666):
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


def atomic_write_bytes(path, data):
    """Write `data` to `path` atomically (temp file in the same folder, fsync, rename), with the
    permissions a plain `open(path, "w")` would give (mkstemp alone creates 0600 files)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.fchmod(fd, _umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_weights(model, path):
    """Keras insists on the `.weights.h5` suffix, so the temp file keeps it."""
    tmp = path[: -len(".weights.h5")] + f".tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def sidecar_path(weights_path):
    """The JSON sidecar beside a converted or pre-trained backbone: x.weights.h5 -> x.weights.h5.json."""
    return os.fspath(weights_path) + ".json"


def versions(*extra):
    """Versions of Python and of the libraries a result depends on (those importable)."""
    import importlib.metadata

    out = {"python": platform.python_version()}
    names = ("tfmedbench", "tensorflow", "keras", "numpy", "tensorflow-datasets", *extra)
    for name in names:
        try:
            out[name.replace("-", "_")] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            module = {"tensorflow": "tensorflow-cpu"}.get(name)
            try:
                out[name] = importlib.metadata.version(module) if module else None
            except importlib.metadata.PackageNotFoundError:
                out[name] = None
    return {k: v for k, v in out.items() if v is not None}
