"""What `tfmedbench` calls: name or local file -> cached, converted `.weights.h5` path.

Cache layout under $TFMEDBENCH_HOME (default ~/.cache/tfmedbench):
    weights/<name>.weights.h5 (+ .json sidecar)      converted registry initializations
    weights/local/<sha16>-<format>-<config>.weights.h5  converted local files, keyed by content
    downloads/<name>/<original file name>            the authors' files, verified
    downloads/<name>/SHA256SUMS                      digests recorded on first download
Once converted, nothing here imports torch again.
"""

from __future__ import annotations

import os

from tfmedbench.errors import UserError
from weights_converter import registry
from weights_converter.errors import ConversionError
from weights_converter.spec import RESNET50_DEPTHS, RESNET50_WIDTH


def home():
    return os.path.expanduser(os.environ.get("TFMEDBENCH_HOME") or "~/.cache/tfmedbench")


def weights_dir():
    return os.path.join(home(), "weights")


def downloads_dir(name):
    return os.path.join(home(), "downloads", name)


def converted_path(name):
    return os.path.join(weights_dir(), f"{name}.weights.h5")


def _config_tag(depths, width):
    if tuple(depths) == RESNET50_DEPTHS and width == RESNET50_WIDTH:
        return "r50"
    return "d" + "".join(map(str, depths)) + f"w{width}"


def _have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


TORCH_FREE_FORMATS = ("simclr-tf", "byol")  # read with TF / the guarded unpickler


def require_torch_for(record):
    """Fail before downloading hundreds of MB that cannot be converted here."""
    if record.format not in TORCH_FREE_FORMATS and not _have_torch():
        from weights_converter.safe_load import INSTALL_CONVERT

        raise UserError(f"weights '{record.name}' are a PyTorch checkpoint; converting it needs "
                        f"torch: {INSTALL_CONVERT}")


def _convert(src, out, fmt, name, depths, width, normalization=None):
    from weights_converter.convert import convert

    report = convert(src, out, fmt=fmt, name=name, depths=depths, width=width,
                     parity=_have_torch(), normalization=normalization)
    parity = report.get("parity")
    if parity and not parity["passed"]:
        os.remove(out)
        raise ConversionError(
            f"{src}: converted backbone disagrees with the PyTorch reference "
            f"(max |diff| {parity['max_abs_diff']:.2e}, rel L2 {parity['rel_l2']:.2e}); not cached"
        )
    return report


def convert_local(path, fmt=None, depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """Convert a local checkpoint once; later calls return the cached file (keyed by content)."""
    from weights_converter.convert import file_sha256
    from weights_converter.readers import simclr_tf

    path = str(path)
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise UserError(f"{path}: no such file")
    source = path
    if fmt == "simclr-tf" or (os.path.isdir(path) or path.endswith((".index", ".zip"))):
        try:
            source = simclr_tf.resolve_prefix(path)
        except ConversionError:
            if fmt == "simclr-tf":
                raise
    digest = file_sha256(source)
    out = os.path.join(
        weights_dir(), "local", f"{digest[:16]}-{fmt or 'auto'}-{_config_tag(depths, width)}.weights.h5"
    )
    if not os.path.exists(out):
        _convert(source, out, fmt, None, depths, width)
    return out


def _located_sources(record):
    """Paths of the record's files if all present locally (primary set or one alternative)."""
    folder = downloads_dir(record.name)
    primary = [os.path.join(folder, f.filename) for f in record.files]
    if primary and all(os.path.exists(p) for p in primary):
        return primary
    for alt in record.alternatives:
        candidate = os.path.join(folder, alt.filename)
        if os.path.exists(candidate):
            return [candidate]
    return None


def _source_for_reader(record, paths):
    if record.format == "simclr-tf" and not paths[0].endswith(".zip"):
        return os.path.dirname(paths[0])  # the directory holding checkpoint/.index/.data
    return paths[0]


def offline_message(record):
    folder = downloads_dir(record.name)
    wanted = ", ".join(f.filename for f in record.files)
    urls = " ; ".join(f.url for f in record.files[:1]) + (" (+ siblings)" if len(record.files) > 1 else "")
    how = record.manual or f"download {wanted} from {urls}"
    return (
        f"weights '{record.name}' are not cached and cannot be fetched here: {how}, place it in "
        f"{folder}/ and rerun (or run `tfmedbench weights fetch {record.name}` where online)"
    )


def _registered_file():
    return os.path.join(weights_dir(), "registered.json")


def registered():
    """User-registered names (e.g. `tfmedbench pretrain --register`) -> .weights.h5 paths."""
    import json

    try:
        with open(_registered_file()) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def register_local(name, path):
    """Make `--weights NAME` resolve to an existing Keras backbone file; returns the name."""
    import json

    key = str(name).strip().lower()
    if key in registry.BY_NAME or key in registry.ALIASES:
        raise UserError(f"cannot register {name!r}: it is a built-in initialization; pick another name")
    if not str(path).endswith(".weights.h5") or not os.path.isfile(path):
        raise UserError(f"cannot register {path}: not an existing .weights.h5 file")
    names = registered()
    names[key] = os.path.abspath(path)
    os.makedirs(weights_dir(), exist_ok=True)
    with open(_registered_file() + ".tmp", "w") as handle:
        json.dump(names, handle, indent=2, sort_keys=True)
    os.replace(_registered_file() + ".tmp", _registered_file())
    return key


def resolve_name(name, allow_fetch=False, depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """Registry name -> converted `.weights.h5` (None for 'random'); converts a placed file."""
    local = registered().get(str(name).strip().lower())
    if local is not None:
        if not os.path.isfile(local):
            raise UserError(f"weights {name!r} are registered as {local}, which no longer exists")
        return local
    record = registry.lookup(name)
    if record.format is None:
        return None
    out = converted_path(record.name)
    if os.path.exists(out):
        return out
    paths = _located_sources(record)
    if paths is None:
        if not allow_fetch:
            raise UserError(offline_message(record))
        return fetch_name(record.name, depths=depths, width=width)
    _convert(_source_for_reader(record, paths), out, record.format, record.name, depths, width,
             record.normalization)
    return out


def _recorded_digests(folder):
    sums = os.path.join(folder, "SHA256SUMS")
    if not os.path.exists(sums):
        return {}
    with open(sums) as handle:
        return {line.split()[1]: line.split()[0] for line in handle if line.strip()}


def _record_digest(folder, filename, digest):
    digests = _recorded_digests(folder)
    digests[filename] = digest
    with open(os.path.join(folder, "SHA256SUMS.tmp"), "w") as handle:
        handle.writelines(f"{d}  {f}\n" for f, d in sorted(digests.items()))
    os.replace(os.path.join(folder, "SHA256SUMS.tmp"), os.path.join(folder, "SHA256SUMS"))


def fetch_name(name, force=False, progress=True, url_override=None,
               depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """Download (resuming), verify, convert and cache a registry initialization."""
    from weights_converter.fetch import OfflineError, download

    record = registry.lookup(name)
    if record.format is None:
        return None
    out = converted_path(record.name)
    if os.path.exists(out) and not force:
        return out
    require_torch_for(record)
    folder = downloads_dir(record.name)
    os.makedirs(folder, exist_ok=True)
    paths = None if force else _located_sources(record)
    if paths is None:
        if record.manual:
            raise UserError(offline_message(record))
        recorded = _recorded_digests(folder)
        paths = []
        for spec in record.files:
            dest = os.path.join(folder, spec.filename)
            url = url_override(spec) if url_override else spec.url
            try:
                digest = download(url, dest, spec.sha256 or recorded.get(spec.filename),
                                  spec.sha256_prefix, progress=progress,
                                  size=spec.size,
                                  max_bytes=registry.size_limit(record, spec))
            except OfflineError as err:
                raise UserError(f"{err}. {offline_message(record)}") from None
            _record_digest(folder, spec.filename, digest)
            paths.append(dest)
    _convert(_source_for_reader(record, paths), out, record.format, record.name,
             depths, width, record.normalization)
    return out
