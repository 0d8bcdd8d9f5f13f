"""A sweep's configuration: the grid of (task, initialization, protocol, label fraction, seed)
cells, its parsing from the CLI / a sweep.yaml, and `sweep.json`, which a resumed sweep must match.

Seeds are derived from the run index only (`seed = base_seed + run`), so run r of every task and
initialization uses the same seed, and re-running the same command reproduces the same cells.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re

from tfmedbench.errors import UserError
from tfmedbench.fileutil import atomic_write_text, sidecar_path

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")
# Settings that change what a run computes: a resumed sweep must use the same ones.
IDENTITY_FIELDS = ("base_seed", "overrides", "task_overrides", "precision", "jit_compile",
                   "label_subset", "data_config")
PROTOCOLS = ("finetune", "linear", "frozen-encoder")
EXECUTORS = ("local", "ray")
ADDRESS_RE = re.compile(r"^(?:auto|(?:[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5}))$")


def protocols_for(task, protocols):
    """The sweep's protocols that apply to `task` (linear: classification; frozen-encoder:
    segmentation; finetune: all)."""
    from tfmedbench.tasks import RECIPES

    kind = RECIPES[task].kind if task in RECIPES else None
    applies = {"finetune": True, "linear": kind == "classification",
               "frozen-encoder": kind == "segmentation"}  # fmt: skip
    return [p for p in protocols if applies.get(p, True)]


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
    data_config: str | None = None  # a builder config for every task's dataset (e.g. paper_split)
    manual_dir: dict = dataclasses.field(default_factory=dict)  # {TASK or "*": dir}
    strategy: str = "auto"
    precision: str = "auto"
    jit_compile: str = "auto"
    tpu: str | None = None
    allow_fetch: bool = False
    retry_failed: bool = False
    verbose: int = 1
    # Axes beyond the paper's grid (defaults: the paper's full fine-tuning on all labels).
    protocols: tuple = ("finetune",)
    label_fractions: tuple = (1.0,)
    label_subset: str = "fixed"
    # A study needs each run's metrics and predictions, not its ~225 MB of weights.
    save_weights: str = "none"
    # Where the cells run (study/ray_executor.py). Not identity fields: they change where a run
    # computes, not what, so a sweep may be resumed with another executor. None = unset (Ray
    # resolves the resources to 1 CPU and no GPU per run).
    executor: str = "local"
    address: str | None = None
    gpus_per_run: float | None = None
    cpus_per_run: float | None = None

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
        self._check_axes()
        self._check_executor()

    def _check_axes(self):
        self.protocols = tuple(dict.fromkeys(str(p) for p in _split_list(self.protocols)))
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise UserError(f"--protocols {bad or '()'}: choose from {', '.join(PROTOCOLS)}")
        try:
            fractions = [float(f) for f in _split_list(self.label_fractions)]
        except ValueError:
            raise UserError(f"--label-fractions {self.label_fractions!r}: numbers in (0, 1]") from None
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise UserError(f"--label-fractions {fractions}: every fraction must be in (0, 1]")
        self.label_fractions = tuple(sorted(set(fractions)))
        if self.label_subset not in ("fixed", "per-run"):
            raise UserError(f"--label-subset {self.label_subset!r}: choose fixed or per-run")
        if self.save_weights not in ("best", "backbone", "none"):
            raise UserError(f"--save-weights {self.save_weights!r}: choose best, backbone or none")

    def _check_executor(self):
        if self.executor not in EXECUTORS:
            raise UserError(f"--executor {self.executor!r}: choose {' or '.join(EXECUTORS)}")
        given = [f"--{k.replace('_', '-')}" for k in ("address", "gpus_per_run", "cpus_per_run")
                 if getattr(self, k) is not None]  # fmt: skip
        if self.executor == "local" and given:
            raise UserError(f"{', '.join(given)} apply to --executor ray (the local executor runs "
                            "one cell at a time in this process): add --executor ray")  # fmt: skip
        if self.address is not None:
            self.address = str(self.address).strip()
            if self.address.startswith("ray://"):
                raise UserError(f"--address {self.address}: Ray Client addresses are not supported; "
                                "run the benchmark on a node of the cluster with --address auto")  # fmt: skip
            match = ADDRESS_RE.match(self.address)
            if not match or (match.group(1) and not 0 < int(match.group(1)) < 65536):
                raise UserError(f"--address {self.address!r}: give auto or HOST:PORT of the Ray "
                                "head (e.g. 10.0.0.1:6379)")  # fmt: skip
        self.gpus_per_run = _resource("gpus-per-run", self.gpus_per_run, zero_ok=True)
        self.cpus_per_run = _resource("cpus-per-run", self.cpus_per_run, zero_ok=False)

    def run_resources(self):
        """(CPUs, GPUs) each Ray task asks for."""
        return (1.0 if self.cpus_per_run is None else self.cpus_per_run,
                0.0 if self.gpus_per_run is None else self.gpus_per_run)  # fmt: skip

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
        return [
            dict(task=task, weights=label, protocol=protocol, label_fraction=fraction, run=run,
                 seed=derive_seed(run, self.base_seed))
            for run in range(self.runs)
            for task in self.tasks
            for protocol in protocols_for(task, self.protocols)
            for fraction in self.label_fractions
            for label in self.labels
        ]  # fmt: skip

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks)
        d["protocols"] = list(self.protocols)
        d["label_fractions"] = list(self.label_fractions)
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


def _resource(name, value, zero_ok):
    """A Ray resource request: a fraction below 1 (runs share the device) or a whole number --
    Ray refuses fractions above 1."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        raise UserError(f"--{name} {value!r}: a number {'>= 0' if zero_ok else '> 0'}")
    if number > 1 and not number.is_integer():
        raise UserError(f"--{name} {value!r}: Ray takes a fraction below 1 (runs share one device) "
                        "or a whole number, e.g. 0.25 or 2")  # fmt: skip
    if 0 < number < 1 and round(number, 4) != number:
        raise UserError(f"--{name} {value!r}: Ray resolves fractions to 4 decimals, e.g. 0.25")
    return number


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
    for axis, default in (("protocols", ["finetune"]), ("label_fractions", [1.0])):
        merged[axis] = sorted(set(old.get(axis, default)) | set(new[axis]), key=str)
    return merged


def load_sweep_json(output_dir):
    path = os.path.join(output_dir, SWEEP_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def write_sweep_json(output_dir, merged):
    atomic_write_text(os.path.join(output_dir, SWEEP_FILE),
                      json.dumps(merged, indent=2, sort_keys=True) + "\n")  # fmt: skip


def run_dir_for(output_dir, cell):
    """runs/TASK/WEIGHTS/seed-N for the paper's grid; protocol and fraction folders otherwise."""
    parts = [output_dir, RUNS_DIR, cell["task"], cell["weights"]]
    protocol, fraction = cell.get("protocol", "finetune"), cell.get("label_fraction", 1.0)
    if protocol != "finetune" or fraction != 1.0:
        parts += [protocol, f"fraction-{fraction:g}"]
    return os.path.join(*parts, f"seed-{cell['seed']}")
