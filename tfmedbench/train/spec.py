"""One resolved run specification, built once (by the CLI, a sweep or pretrain) and consumed by
`fit`: the recipe, the weights file, the dataset and the runtime options, all validated before
anything is written or trained."""

from __future__ import annotations

import dataclasses
import math
import os
import re

from tfmedbench.errors import UserError
from tfmedbench.tasks import get_recipe
from tfmedbench.train.strategy import PRECISIONS, STRATEGIES

PROTOCOLS = ("finetune", "linear", "frozen-encoder")
# Protocol defaults applied before the user's overrides (README, "Protocols"): a linear head on a
# frozen backbone learns with a larger step than full fine-tuning (MoCo v3 probes at lr 0.1 with
# SGD; Adam at 1e-3 is the recipe family's segmentation rate); a frozen encoder keeps the
# segmentation recipe as it is.
PROTOCOL_DEFAULTS = {"finetune": {}, "linear": {"lr": 1e-3}, "frozen-encoder": {}}
LABEL_SUBSETS = ("fixed", "per-run")
SAVE_WEIGHTS = ("best", "backbone", "none")


@dataclasses.dataclass(frozen=True)
class Runtime:
    strategy: str = "auto"
    tpu: str | None = None
    precision: str = "auto"
    jit_compile: str = "auto"
    deterministic: str = "auto"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    task: str
    recipe: object  # tasks.Recipe, validated
    weights: str  # as given: a registry name, a file, or a sweep label's spec
    weights_path: str | None  # the resolved backbone .weights.h5 (None: random init)
    seed: int
    builder: str  # TFDS builder name, with "/config" for a non-default builder config
    data_dir: str | None = None
    manual_dir: str | None = None
    output_dir: str | None = None
    runtime: Runtime = Runtime()
    protocol: str = "finetune"
    label_fraction: float = 1.0
    label_subset: str = "fixed"
    save_weights: str = "best"
    resume: bool = False
    overwrite: bool = False
    verbose: int = 1

    def to_config(self):
        """The JSON-able description written to config.json (and compared on --resume)."""
        return {
            "task": self.task,
            "weights": self.weights,
            "weights_path": self.weights_path,
            "seed": self.seed,
            "builder": self.builder,
            "data_config": self.builder.partition("/")[2] or None,
            "data_dir": self.data_dir,
            "protocol": self.protocol,
            "label_fraction": self.label_fraction,
            "label_subset": self.label_subset,
            "save_weights": self.save_weights,
            "runtime": dataclasses.asdict(self.runtime),
            "recipe": self.recipe.to_dict(),
        }


def _choice(name, value, allowed):
    if value not in allowed:
        raise UserError(f"--{name} {value!r} is not one of {', '.join(allowed)}")
    return value


def make_runtime(strategy="auto", tpu=None, precision="auto", jit_compile="auto",
                 deterministic="auto"):  # fmt: skip
    _choice("strategy", strategy, STRATEGIES)
    _choice("precision", precision, PRECISIONS)
    _choice("jit-compile", str(jit_compile).lower(), ("auto", "true", "false"))
    _choice("deterministic", str(deterministic).lower(), ("auto", "true", "false"))
    return Runtime(strategy, tpu, precision, str(jit_compile).lower(), str(deterministic).lower())


def resolve_recipe(task, protocol="finetune", overrides=None):
    """The task's validated recipe for `protocol`, with the user's overrides on top."""
    _choice("protocol", protocol, PROTOCOLS)
    recipe = get_recipe(task)
    wanted = "classification" if protocol == "linear" else "segmentation"
    if protocol != "finetune" and recipe.kind != wanted:
        raise UserError(f"--protocol {protocol} applies to {wanted} tasks, not {recipe.code}")
    changes = dict(PROTOCOL_DEFAULTS[protocol])
    changes.update(overrides or {})
    return recipe.override(**changes) if changes else recipe


def _builder_name(recipe, data_config):
    """`--data-config NAME` selects a builder config (e.g. the paper's split lists)."""
    if not data_config:
        return recipe.builder
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(data_config)):
        raise UserError(f"--data-config {data_config!r}: a builder config name, e.g. paper_split")
    from tfmedbench.data.prepare import check_builder_config

    check_builder_config(f"{recipe.builder}/{data_config}")  # with the spec: before the run starts TF
    return f"{recipe.builder}/{data_config}"


def make_spec(task, weights="random", *, overrides=None, seed=0, data_dir=None,
              manual_dir=None, output_dir=None, runtime=None, protocol="finetune",
              label_fraction=1.0, label_subset="fixed", save_weights="best", resume=False,
              overwrite=False, allow_fetch=False, weights_format=None, weights_path=None,
              data_config=None, verbose=1):  # fmt: skip
    """Validate every option and resolve the weights once; raises UserError naming the option.

    weights_path: an already resolved backbone file (a sweep's preflight resolved it).
    """
    recipe = resolve_recipe(task, protocol, overrides)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"--seed must be an integer >= 0, got {seed!r}")
    if not (isinstance(label_fraction, (int, float)) and math.isfinite(label_fraction)
            and 0 < label_fraction <= 1):  # fmt: skip
        raise UserError(f"--label-fraction must be in (0, 1], got {label_fraction!r}")
    _choice("label-subset", label_subset, LABEL_SUBSETS)
    _choice("save-weights", save_weights, SAVE_WEIGHTS)
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; choose one")
    if weights_path is None:
        from tfmedbench.train.weights import resolve_weights_path

        weights_path = resolve_weights_path(weights, allow_fetch=allow_fetch, fmt=weights_format,
                                            depths=recipe.depths, width=recipe.width)  # fmt: skip
    return RunSpec(
        task=recipe.code, recipe=recipe, weights=str(weights), weights_path=weights_path,
        seed=seed, builder=_builder_name(recipe, data_config), data_dir=data_dir,
        manual_dir=manual_dir, output_dir=None if output_dir is None else os.fspath(output_dir),
        runtime=runtime or Runtime(), protocol=protocol, label_fraction=float(label_fraction),
        label_subset=label_subset, save_weights=save_weights, resume=resume,
        overwrite=overwrite, verbose=verbose,
    )  # fmt: skip
