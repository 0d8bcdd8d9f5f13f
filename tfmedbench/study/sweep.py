"""The whole benchmark as one resumable sweep: every (task, weights, seed) cell, in-process.

Layout of a sweep directory:

    DIR/sweep.json        the sweep's settings (tasks, initializations, runs, overrides, ...)
    DIR/results.jsonl     the results store, one record per finished run (see results_store)
    DIR/runs/TASK/WEIGHTS/seed-N/   each run's directory as written by `fit`

The store is the source of truth. A cell whose key (task, weights, seed) is in the store is never
run again (failed cells only with `retry_failed`); a run directory without a record is the
remains of an interrupted run and is deleted before its cell runs again. Seeds are derived from
the run index only (`seed = base_seed + run`), so run r of every task and initialization uses
the same seed, and re-running the same command reproduces the same cells.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import re
import shutil
import sys
import time
import traceback

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file
from tfmedbench.study.pretrain import sidecar_path
from tfmedbench.study.store import ResultsStore, record_key

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")
# Settings that change what a run computes: a resumed sweep must use the same ones.
IDENTITY_FIELDS = ("base_seed", "overrides", "task_overrides", "precision", "jit_compile")


def derive_seed(run_index, base_seed=0):
    """The seed of run `run_index` (0-based): the same for every task and initialization."""
    return int(base_seed) + int(run_index)


@dataclasses.dataclass
class SweepConfig:
    tasks: tuple
    weights: tuple  # ((label, spec), ...)
    runs: int
    baseline: str | None = None
    base_seed: int = 0
    overrides: dict = dataclasses.field(default_factory=dict)
    task_overrides: dict = dataclasses.field(default_factory=dict)  # {TASK: {field: value}}
    data_dir: str | None = None
    manual_dir: dict = dataclasses.field(default_factory=dict)  # {TASK or "*": dir}
    strategy: str = "auto"
    precision: str = "auto"
    jit_compile: str = "auto"
    tpu: str | None = None
    allow_fetch: bool = False
    retry_failed: bool = False
    verbose: int = 1

    def __post_init__(self):
        self.tasks = tuple(str(t).upper() for t in self.tasks)
        self.weights = tuple((str(label), str(spec)) for label, spec in self.weights)
        if not self.tasks:
            raise UserError("no tasks given (e.g. --tasks TXC,VFS)")
        if not self.weights:
            raise UserError("no initializations given (e.g. --weights random,imagenet)")
        if int(self.runs) < 1:
            raise UserError(f"--runs must be >= 1, got {self.runs}")
        self.runs = int(self.runs)
        labels = [label for label, _ in self.weights]
        for label in labels:
            if not LABEL_RE.match(label):
                raise UserError(
                    f"initialization label {label!r} must be letters, digits and ._+- "
                    "(name a path with LABEL=PATH)"
                )
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise UserError(f"initialization label(s) given twice: {', '.join(dupes)}")
        if len(set(self.tasks)) != len(self.tasks):
            raise UserError(f"a task is given twice in {', '.join(self.tasks)}")
        self.overrides = normalize_overrides(self.overrides)
        self.task_overrides = {
            str(k).upper(): normalize_overrides(v) for k, v in (self.task_overrides or {}).items()
        }
        self.manual_dir = {
            (str(k).upper() if k != "*" else "*"): v for k, v in (self.manual_dir or {}).items()
        }
        if self.baseline is None:
            self.baseline = "imagenet" if "imagenet" in labels else labels[0]

    @property
    def labels(self):
        return tuple(label for label, _ in self.weights)

    def spec(self, label):
        return dict(self.weights)[label]

    def overrides_for(self, task):
        merged = dict(self.overrides)
        merged.update(self.task_overrides.get(task, {}))
        return merged

    def manual_dir_for(self, task):
        return self.manual_dir.get(task, self.manual_dir.get("*"))

    def cells(self):
        """All cells in run order: run-major, so every initialization gets results early."""
        out = []
        for run in range(self.runs):
            for task in self.tasks:
                for label in self.labels:
                    out.append(
                        dict(task=task, weights=label, run=run,
                             seed=derive_seed(run, self.base_seed))
                    )  # fmt: skip
        return out

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks)
        d["weights"] = [[label, spec] for label, spec in self.weights]
        return d


# --------------------------------------------------------------------------- parsing helpers
def normalize_overrides(overrides):
    """Type recipe overrides like the Recipe fields ("2" -> 2, "1,1,1,1" -> [1, 1, 1, 1]), so a
    resumed sweep compares equal settings equal however they were written."""
    from tfmedbench.tasks import RECIPES, coerce

    template = next(iter(RECIPES.values()))
    valid = {f.name for f in dataclasses.fields(template)}
    out = {}
    for key, value in dict(overrides or {}).items():
        if key not in valid:
            raise UserError(f"unknown recipe field {key!r}; valid fields: {', '.join(sorted(valid))}")
        try:
            value = coerce(value, getattr(template, key), key)
        except ValueError as err:
            raise UserError(str(err)) from None
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def weights_label(spec):
    """Default table label of a --weights value: a path's sidecar name or file stem."""
    spec = str(spec)
    if os.path.sep in spec or spec.endswith(".h5") or os.path.exists(spec):
        sidecar = sidecar_path(spec)
        if os.path.exists(sidecar):
            try:
                with open(sidecar) as fh:
                    name = json.load(fh).get("name")
                if name and LABEL_RE.match(str(name)):
                    return str(name)
            except (OSError, ValueError):
                pass
        base = os.path.basename(spec.rstrip(os.path.sep))
        for suffix in (".weights.h5", ".h5", ".pth.tar", ".pth", ".pt"):
            if base.endswith(suffix):
                return base[: -len(suffix)]
        return base
    return spec


def parse_weights(values):
    """['random', 'a=/x/a.weights.h5', '/x/b.weights.h5'] -> (('random','random'), ...)."""
    out = []
    for value in values:
        for item in _split_list(value):
            if "=" in item and not os.path.exists(item):
                label, spec = item.split("=", 1)
                out.append((label.strip(), spec.strip()))
            else:
                out.append((weights_label(item), item))
    return tuple(out)


def parse_manual_dirs(values):
    """['TXC=/raw/shenzhen', '/raw/all'] -> {'TXC': ..., '*': ...}."""
    out = {}
    for value in values or ():
        head, sep, tail = str(value).partition("=")
        if sep and head and re.fullmatch(r"[A-Za-z0-9]+", head) and not os.path.exists(value):
            out[head.upper()] = tail
        else:
            out["*"] = value
    return out


def _split_list(value):
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def config_from_mapping(data, **cli):
    """SweepConfig from a sweep.yaml mapping, with CLI values (not None) taking precedence."""
    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(SweepConfig)} | {"set", "output"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"unknown key(s) in the sweep config: {unknown}; valid: {sorted(known)}")
    if "set" in data:
        data.setdefault("overrides", {}).update(data.pop("set"))
    data.pop("output", None)
    weights = data.get("weights")
    if isinstance(weights, dict):
        data["weights"] = tuple((str(k), str(v)) for k, v in weights.items())
    elif weights is not None:
        data["weights"] = parse_weights(_split_list(weights))
    if "tasks" in data:
        data["tasks"] = tuple(_split_list(data["tasks"]))
    md = data.get("manual_dir")
    if isinstance(md, str):
        data["manual_dir"] = {"*": md}
    for key, value in cli.items():
        if value is None or value == () or value == {}:
            continue
        if key == "overrides":
            data.setdefault("overrides", {}).update(value)
        elif key == "manual_dir":
            data.setdefault("manual_dir", {}).update(value)
        else:
            data[key] = value
    for key in ("tasks", "weights", "runs"):
        if key not in data:
            raise UserError(f"the sweep needs --{key} (or `{key}:` in --config)")
    try:
        return SweepConfig(**data)
    except TypeError as err:
        raise UserError(f"bad sweep config: {err}") from None


# --------------------------------------------------------------------------- sweep.json
def _identity(config_dict):
    return {k: config_dict.get(k) for k in IDENTITY_FIELDS}


def reconcile(output_dir, config):
    """Check `config` against a previous sweep.json in `output_dir`; return the merged dict.

    Tasks, initializations and runs may grow (the union is kept, in first-seen order); settings
    that change results (overrides, base seed, precision, ...) and the meaning of an existing
    initialization label must not change, or the store would mix incomparable runs.
    """
    new = json.loads(json.dumps(config.to_dict()))
    path = os.path.join(output_dir, SWEEP_FILE)
    if not os.path.exists(path):
        return new
    with open(path) as fh:
        old = json.load(fh)
    old_id, new_id = _identity(old), _identity(new)
    diffs = [k for k in IDENTITY_FIELDS if old_id.get(k) != new_id.get(k)]
    old_specs = dict((label, spec) for label, spec in old.get("weights", []))
    for label, spec in config.weights:
        if label in old_specs and old_specs[label] != spec:
            diffs.append(f"weights {label!r} ({old_specs[label]} -> {spec})")
    if diffs:
        raise UserError(
            f"{output_dir} holds a sweep with different settings ({', '.join(diffs)}); its "
            "runs would not be comparable. Use the same settings to resume, or a new --output."
        )
    merged = dict(new)
    merged["tasks"] = list(dict.fromkeys(list(old["tasks"]) + list(new["tasks"])))
    merged["weights"] = [list(x) for x in old["weights"]] + [
        list(x) for x in new["weights"] if x[0] not in old_specs
    ]
    merged["runs"] = max(int(old["runs"]), int(new["runs"]))
    return merged


def load_sweep_json(output_dir):
    path = os.path.join(output_dir, SWEEP_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def _write_json_atomic(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- progress
def _fmt_duration(seconds):
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One overall bar line per cell, printed above Keras' per-epoch progress.

    ETA = remaining cells x mean cell time of this session (per task where known).
    """

    def __init__(self, total, done, stream=None, width=24):
        self.total, self.done, self.failed = total, done, 0
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.durations = {}  # task -> [seconds]

    def eta(self, remaining_tasks):
        all_d = [d for ds in self.durations.values() for d in ds]
        if not all_d:
            return None
        mean_all = sum(all_d) / len(all_d)
        total = 0.0
        for task in remaining_tasks:
            ds = self.durations.get(task)
            total += sum(ds) / len(ds) if ds else mean_all
        return total

    def line(self, remaining_tasks, current=None):
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [
            f"[benchmark] [{bar}] {self.done}/{self.total} cells ({100 * frac:.0f}%)",
            f"{self.failed} failed" if self.failed else None,
            f"elapsed {_fmt_duration(time.monotonic() - self.start)}",
            f"ETA {_fmt_duration(self.eta(remaining_tasks))}",
            f"now: {current}" if current else None,
        ]
        return " | ".join(p for p in parts if p)

    def show(self, remaining_tasks, current=None):
        print(self.line(remaining_tasks, current), file=self.stream, flush=True)

    def finished(self, task, seconds, ok):
        self.done += 1
        self.failed += 0 if ok else 1
        self.durations.setdefault(task, []).append(seconds)


# --------------------------------------------------------------------------- running
def preflight(config, tasks_needed, labels_needed):
    """Fail fast on what would fail every cell: tasks, overrides, weights, missing data.

    Builds each needed TFDS dataset once (from its manual dir) before the first cell.
    Returns {label: {"path":..., "sha256":...}} for file-backed initializations.
    """
    from tfmedbench.tasks import get_recipe
    from tfmedbench.train.weights import resolve_weights_path

    recipes = {}
    for task in tasks_needed:
        try:
            recipes[task] = get_recipe(task, **config.overrides_for(task))
        except (KeyError, ValueError) as err:
            raise UserError(f"task {task}: {err.args[0] if err.args else err}") from None
    weights_info = {}
    for label in labels_needed:
        spec = config.spec(label)
        path = resolve_weights_path(spec, allow_fetch=config.allow_fetch)
        if path is not None:
            weights_info[label] = {"path": os.path.abspath(path), "sha256": sha256_file(path)}
    from tfmedbench.data.prepare import ensure_built

    for task, recipe in recipes.items():
        ensure_built(
            recipe.builder,
            data_dir=config.data_dir,
            manual_dir=config.manual_dir_for(task),
            verbose=bool(config.verbose),
        )
    return weights_info


def run_dir_for(output_dir, cell):
    return os.path.join(output_dir, RUNS_DIR, cell["task"], cell["weights"], f"seed-{cell['seed']}")


def _default_fit():
    from tfmedbench.train import fit

    return fit


def _release_memory():
    if "keras" in sys.modules:
        try:
            sys.modules["keras"].backend.clear_session()
        except Exception:  # noqa: BLE001 - best effort between cells
            pass
    gc.collect()


def _versions():
    out = {"python": sys.version.split()[0]}
    try:
        import tfmedbench

        out["tfmedbench"] = tfmedbench.__version__
    except Exception:  # noqa: BLE001
        pass
    for mod in ("tensorflow", "keras", "numpy"):
        if mod in sys.modules:
            out[mod] = getattr(sys.modules[mod], "__version__", "?")
    return out


def run_sweep(config, output_dir, fit_fn=None, check_data=True, stream=None, stop_after=None):
    """Run every unfinished cell of `config` into `output_dir`; return a summary dict.

    fit_fn: the per-cell training call (default `tfmedbench.train.fit`, in-process).
    check_data: run `preflight` (validate tasks and weights, build datasets) first.
    stop_after: stop after this many cells (for tests and smoke runs); None = all.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)
    store = ResultsStore(output_dir)
    with store:
        merged = reconcile(output_dir, config)
        _write_json_atomic(os.path.join(output_dir, SWEEP_FILE), merged)
        resolved = store.resolved()
        todo = []
        for cell in config.cells():
            key = record_key(cell)
            rec = resolved.get(key)
            if rec is None or (config.retry_failed and rec.get("status") != "ok"):
                todo.append(cell)
        total = len(config.cells())
        progress = Progress(total, total - len(todo), stream=stream)
        summary = dict(total=total, skipped=total - len(todo), ran=0, ok=0, failed=0)
        if not todo:
            progress.show([])
            return summary
        weights_info = {}
        if check_data:
            weights_info = preflight(
                config,
                list(dict.fromkeys(c["task"] for c in todo)),
                list(dict.fromkeys(c["weights"] for c in todo)),
            )
        fit_fn = fit_fn or _default_fit()
        for index, cell in enumerate(todo):
            if stop_after is not None and index >= stop_after:
                break
            remaining = [c["task"] for c in todo[index:]]
            label = f"{cell['task']} x {cell['weights']} x seed {cell['seed']}"
            progress.show(remaining, current=label)
            record = run_cell(config, output_dir, cell, fit_fn, weights_info.get(cell["weights"]))
            store.append(record)
            ok = record["status"] == "ok"
            progress.finished(cell["task"], record["wall_time_s"] or 0.0, ok)
            summary["ran"] += 1
            summary["ok" if ok else "failed"] += 1
            if not ok:
                print(
                    f"[benchmark] FAILED {label}: {record['error_type']}: {record['error']}",
                    file=progress.stream,
                    flush=True,
                )
            _release_memory()
        progress.show([])
        return summary


def run_cell(config, output_dir, cell, fit_fn, weights_info=None):
    """Run one cell with `fit`; return its store record (status ok or failed, never raises
    except on KeyboardInterrupt/SystemExit)."""
    run_dir = run_dir_for(output_dir, cell)
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)  # remains of an interrupted, unrecorded run
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    spec = config.spec(cell["weights"])
    record = dict(
        task=cell["task"],
        weights=cell["weights"],
        weights_spec=spec,
        seed=cell["seed"],
        run=cell["run"],
        run_dir=os.path.relpath(run_dir, output_dir),
    )
    if weights_info:
        record["weights_sha256"] = weights_info.get("sha256")
    start = time.monotonic()
    try:
        result = fit_fn(
            cell["task"],
            spec,
            data_dir=config.data_dir,
            manual_dir=config.manual_dir_for(cell["task"]),
            output_dir=run_dir,
            seed=cell["seed"],
            overrides=config.overrides_for(cell["task"]) or None,
            strategy=config.strategy,
            tpu=config.tpu,
            allow_fetch=config.allow_fetch,
            precision=config.precision,
            jit_compile=config.jit_compile,
            verbose=config.verbose,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        record.update(
            status="failed",
            error_type=type(err).__name__,
            error=str(err).strip().splitlines()[0][:500] if str(err).strip() else repr(err),
            traceback="".join(traceback.format_exception(err))[-4000:],
            wall_time_s=time.monotonic() - start,
            versions=_versions(),
        )
        return record
    metrics = dict(getattr(result, "metrics", None) or {})
    for key in ("task", "weights", "seed"):
        metrics.pop(key, None)
    metrics.pop("status", None)
    record.update(metrics)
    record["status"] = "ok"
    record.setdefault("wall_time_s", time.monotonic() - start)
    score = record.get("score")
    if score is None or not math.isfinite(float(score)):
        record.update(
            status="failed",
            error_type="NoScore",
            error=f"fit returned no defined test score ({score!r})",
        )
    return record


def load_results(output_dir, status="ok"):
    """Resolved records of a sweep directory (status None = all), in sweep order."""
    store = ResultsStore(output_dir)
    if not os.path.exists(store.path):
        raise UserError(f"{output_dir} has no results store ({os.path.basename(store.path)})")
    resolved = store.resolved()
    recs = [r for r in resolved.values() if status is None or r.get("status") == status]
    return recs
