"""The results store of a benchmark: the single source of truth of which runs finished.

An append-only JSON-lines file (`results.jsonl`), one line per finished run (successful or
failed). Each record is written as one `write` of a complete line followed by `fsync`, so after a
crash or SIGKILL the file holds every record that was acknowledged and at most one torn trailing
line, which readers ignore and the next writer truncates away (it was never acknowledged, so its
run is unfinished and runs again).

Records are keyed by (task, weights, seed, protocol, label fraction). A writer holds an exclusive `flock` on
`results.jsonl.lock` for its whole session, so two sweeps can never write the same store, and it
refuses to add a second successful record for a key. Readers resolve each key to one record: the
first successful one if any, else the latest failed attempt (`attempts` counts them all).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import math
import os

from tfmedbench.errors import UserError

STORE_NAME = "results.jsonl"
SCHEMA_VERSION = 1


def record_key(record):
    """(task, weights, seed, protocol, label fraction); records of the paper's grid written
    before the last two axes existed read as ("finetune", 1.0)."""
    return (str(record["task"]), str(record["weights"]), int(record["seed"]),
            str(record.get("protocol") or "finetune"), float(record.get("label_fraction") or 1.0))


def _json_default(value):
    # numpy scalars / arrays and paths, without importing numpy here.
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _clean(value):
    """NaN/Inf -> None so every line is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def read_records(path):
    """All complete, valid records of a store file in file order (a torn tail is skipped)."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    # A last line without its newline is torn (never acknowledged): skip it, the writer
    # truncates it before appending.
    complete = lines[:-1]
    for lineno, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            raise UserError(
                f"{path}:{lineno} is not valid JSON; the results store was edited or corrupted. "
                "Fix or remove that line (each line is one run record)."
            ) from None
        records.append(rec)
    return records


def resolve(records):
    """{key: record}: the first 'ok' record of each key, else its latest failed one.

    Each resolved record gets `attempts` (number of records of its key).
    """
    out, counts = {}, {}
    for rec in records:
        key = record_key(rec)
        counts[key] = counts.get(key, 0) + 1
        current = out.get(key)
        if current is None or current.get("status") != "ok":
            out[key] = rec
    for key, rec in out.items():
        out[key] = dict(rec, attempts=counts[key])
    return out


class ResultsStore:
    """Append-only, fsync'ed JSONL store in `directory`; use as a context manager to write."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, STORE_NAME)
        self._lock_fh = None

    # -------------------------------------------------------------- reading
    def records(self):
        return read_records(self.path)

    def resolved(self):
        return resolve(self.records())

    def finished_keys(self, include_failed=True):
        return {
            k for k, r in self.resolved().items() if include_failed or r.get("status") == "ok"
        }

    # -------------------------------------------------------------- writing
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self):
        os.makedirs(self.directory, exist_ok=True)
        fh = open(self.path + ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UserError(
                f"another process is writing the results store {self.path}; wait for it to "
                "finish (or stop it) before running the same sweep again"
            ) from None
        self._lock_fh = fh
        self._repair_tail()

    def close(self):
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def _repair_tail(self):
        """Truncate a torn last line (a record whose write was never acknowledged)."""
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if not data or data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1  # 0 when the only line is torn
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, record):
        """Write one record durably; refuses a second 'ok' record of the same key."""
        if self._lock_fh is None:
            raise RuntimeError("ResultsStore.append needs the store opened (use `with store:`)")
        record = dict(record)
        record.setdefault("schema", SCHEMA_VERSION)
        record.setdefault("recorded_at", _dt.datetime.now(_dt.timezone.utc).isoformat())
        key = record_key(record)
        if record.get("status") == "ok":
            existing = self.resolved().get(key)
            if existing is not None and existing.get("status") == "ok":
                raise ValueError(f"the store already holds a finished run for {key}")
        line = json.dumps(_clean(record), default=_json_default, sort_keys=True) + "\n"
        data = line.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        return record


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
