"""Continual (domain-adaptive) supervised pre-training: ImageNet -> CheXpert / ChestX-ray14.

The paper's third finding: continuing to train a supervised ImageNet ResNet-50 on a large chest
X-ray dataset (multi-label, sigmoid + BCE) before fine-tuning bridges the domain gap.

    tfmedbench pretrain --dataset chexpert|chestxray14 --init imagenet|random|PATH --output DIR

trains the multi-label classifier of the dataset's task recipe (ChestX-ray14: 14 findings, DXC14;
CheXpert: all 14 observations with the recipe's uncertainty policy, DXC5) with `fit` (train
split, early stopping on the validation split, test score recorded), then saves its backbone as
`DIR/<name>.weights.h5` with a sidecar `DIR/<name>.weights.h5.json` (the converter's sidecar
convention and fields). The
file is usable as `--weights DIR/<name>.weights.h5` in `fit` and `benchmark`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file
from tfmedbench.tasks import IMAGENET_MEAN, IMAGENET_STD, get_recipe

DATASETS = {"chestxray14": "DXC14", "chexpert": "DXC5"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")


def sidecar_path(weights_path):
    """The converter's sidecar convention: x.weights.h5 -> x.weights.h5.json."""
    return os.fspath(weights_path) + ".json"


def default_name(dataset, init):
    init_label = os.path.basename(str(init)).replace(".weights.h5", "")
    return f"{init_label}_{dataset}"


def pretrain(
    dataset,
    init="imagenet",
    output_dir=".",
    *,
    name=None,
    data_dir=None,
    manual_dir=None,
    seed=0,
    overrides=None,
    strategy="auto",
    tpu=None,
    precision="auto",
    jit_compile="auto",
    allow_fetch=False,
    register=False,
    verbose=1,
    fit_fn=None,
):
    """Pre-train on `dataset` from `init`; return dict(weights, sidecar, run_dir, metrics)."""
    dataset = str(dataset).lower()
    if dataset not in DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    task = DATASETS[dataset]
    name = name or default_name(dataset, init)
    if not NAME_RE.match(name):
        raise UserError(f"--name {name!r}: use letters, digits and ._+- only")
    output_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)
    weights_out = os.path.join(output_dir, f"{name}.weights.h5")
    run_dir = os.path.join(output_dir, f"{name}.run")
    if os.path.exists(weights_out):
        raise UserError(f"{weights_out} exists; choose another --name or --output")
    try:
        recipe = get_recipe(task, **(overrides or {}))
    except (KeyError, ValueError) as err:
        raise UserError(str(err.args[0] if err.args else err)) from None

    if register:
        _check_registrable(name)  # fail before hours of training, not after
    from tfmedbench.train.weights import resolve_weights_path

    init_path = resolve_weights_path(init, allow_fetch=allow_fetch)
    if fit_fn is None:
        from tfmedbench.train import fit as fit_fn
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    result = fit_fn(
        task,
        init,
        data_dir=data_dir,
        manual_dir=manual_dir,
        output_dir=run_dir,
        seed=seed,
        overrides=overrides,
        strategy=strategy,
        tpu=tpu,
        precision=precision,
        jit_compile=jit_compile,
        allow_fetch=allow_fetch,
        verbose=verbose,
    )
    metrics = dict(result.metrics)
    backbone = os.path.join(os.fspath(result.run_dir), "backbone.weights.h5")
    if not os.path.exists(backbone):
        raise UserError(f"the pre-training run wrote no backbone weights ({backbone})")
    check_loads(backbone, recipe)
    tmp = weights_out[: -len(".weights.h5")] + ".tmp.weights.h5"
    shutil.copyfile(backbone, tmp)
    os.replace(tmp, weights_out)

    from tfmedbench.train.rundir import versions, write_json

    # The converter's sidecar fields (weights_converter.convert), plus what the pre-training was.
    sidecar = {
        "name": name,
        "source": os.path.basename(init_path) if init_path else str(init),
        "source_sha256": sha256_file(init_path) if init_path else None,
        "format": "tfmedbench-pretrain",
        "depths": list(recipe.depths),
        "width": recipe.width,
        "ignored": {"pre-training head (not part of the backbone)": 1},
        "ignored_keys": ["fc"],
        "notes": [
            f"continual supervised pre-training on {dataset} ({recipe.builder}, "
            f"{recipe.num_outputs} labels, sigmoid + BCE) starting from {init}"
        ],
        "normalization": {
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "note": "trained on RGB in [0, 1] normalised with ImageNet mean/std",
        },
        "parity": None,  # trained in Keras: there is no other framework's model to compare with
        "versions": metrics.get("versions") or versions(),
        "sha256": sha256_file(weights_out),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "pretrain": {
            "dataset": dataset,
            "builder": recipe.builder,
            "recipe": task,
            "labels": list(recipe.labels),
            "uncertainty_policy": recipe.uncertainty_policy or None,
            "init": str(init),
            "init_path": init_path,
            "seed": seed,
            "run_dir": os.path.relpath(os.fspath(result.run_dir), output_dir),
            "epochs_run": metrics.get("epochs_run"),
            "best_epoch": metrics.get("best_epoch"),
            "best_val_loss": metrics.get("best_val_loss"),
            "test_metric": metrics.get("metric"),
            "test_score": metrics.get("score"),
            "recipe_fields": recipe.to_dict(),
        },
    }
    side = sidecar_path(weights_out)
    write_json(side, sidecar)
    registered = register_weights(name, weights_out) if register else None
    return {
        "weights": weights_out,
        "sidecar": side,
        "run_dir": os.fspath(result.run_dir),
        "metrics": metrics,
        "registered": registered,
    }


def check_loads(path, recipe):
    """The backbone file must load into `resnet50(include_top=False, depths, width)`."""
    from tfmedbench.models import resnet50

    model = resnet50(include_top=False, depths=recipe.depths, width=recipe.width)
    try:
        model.load_weights(path)
    except Exception as err:  # noqa: BLE001
        raise UserError(f"{path} does not load into the ResNet-50 backbone: {err}") from None


def _registration_api():
    try:
        from weights_converter import api
    except ImportError:
        api = None
    register = getattr(api, "register_local", None)
    if register is None:
        raise UserError(
            "--register: the weights registry has no API to register local weights under a name "
            "yet; use the file directly with --weights PATH (its sidecar carries the name)"
        )
    return register


def _check_registrable(name):
    _registration_api()
    try:
        from weights_converter import registry
    except ImportError:
        return
    key = name.strip().lower()
    if key in getattr(registry, "BY_NAME", {}) or key in getattr(registry, "ALIASES", {}):
        raise UserError(f"--register: {name!r} is a built-in initialization; pick another --name")


def register_weights(name, path):
    """Register `path` under `name` in the weights registry (weights_converter.api)."""
    return _registration_api()(name, path)


def read_sidecar(weights_path):
    path = sidecar_path(weights_path)
    with open(path) as fh:
        return json.load(fh)
