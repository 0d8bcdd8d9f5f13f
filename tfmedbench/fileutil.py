"""Small file helpers: atomic writes (readers never see half a file) and sha256 digests."""

from __future__ import annotations

import hashlib
import os
import tempfile


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save_weights(model, path):
    """Keras insists on the `.weights.h5` suffix, so the temp file keeps it."""
    tmp = path[: -len(".weights.h5")] + f".tmp{os.getpid()}.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)
