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
import shutil

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file, sidecar_path, versions
from tfmedbench.train.rundir import write_json
from tfmedbench.models.resnet import IMAGENET_MEAN, IMAGENET_STD
from tfmedbench.study.config import LABEL_RE

DATASETS = {"chestxray14": "DXC14", "chexpert": "DXC5"}
NAME_RE = LABEL_RE  # one naming rule for initialization labels and pre-trained names


def default_name(dataset, init):
    init_label = os.path.basename(str(init)).replace(".weights.h5", "")
    return f"{init_label}_{dataset}"


def _plan(dataset, init, output_dir, name, register):
    """Validate the command before anything is written; returns (task, name, weights out)."""
    dataset = str(dataset).lower()
    if dataset not in DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    name = name or default_name(dataset, init)
    if not NAME_RE.match(name):
        raise UserError(f"--name {name!r}: use letters, digits and ._+- only")
    weights_out = os.path.join(os.path.abspath(os.fspath(output_dir)), f"{name}.weights.h5")
    if os.path.exists(weights_out):
        raise UserError(f"{weights_out} exists; choose another --name or --output")
    if register:
        _check_registrable(name)  # fail before hours of training, not after
    return DATASETS[dataset], name, weights_out


def pretrain(dataset, init="imagenet", output_dir=".", *, name=None, seed=0, overrides=None,
             register=False, run_fn=None, **spec_options):  # fmt: skip
    """Pre-train on `dataset` from `init`; return dict(weights, sidecar, run_dir, metrics).

    spec_options: `make_spec` options (data_dir, manual_dir, runtime, allow_fetch, verbose...).
    Nothing is left behind when it fails: a new output folder is removed again.
    """
    from tfmedbench.train.spec import make_spec

    task, name, weights_out = _plan(dataset, init, output_dir, name, register)
    output_dir = os.path.dirname(weights_out)
    run_dir = os.path.join(output_dir, f"{name}.run")
    spec = make_spec(task, init, overrides=overrides, seed=seed, output_dir=run_dir,
                     overwrite=True, **spec_options)  # fmt: skip
    created = not os.path.exists(output_dir)
    try:
        return _pretrain(spec, str(dataset).lower(), name, weights_out, register, run_fn)
    except BaseException:
        shutil.rmtree(output_dir if created else run_dir, ignore_errors=True)
        raise


def _pretrain(spec, dataset, name, weights_out, register, run_fn):
    if run_fn is None:
        from tfmedbench.train.finetune import run as run_fn
    result = run_fn(spec)
    backbone = os.path.join(os.fspath(result.run_dir), "backbone.weights.h5")
    if not os.path.exists(backbone):
        raise UserError(f"the pre-training run wrote no backbone weights ({backbone})")
    check_loads(backbone, spec.recipe)
    tmp = weights_out[: -len(".weights.h5")] + ".tmp.weights.h5"
    shutil.copyfile(backbone, tmp)
    os.replace(tmp, weights_out)
    side = sidecar_path(weights_out)
    write_json(side, _sidecar(spec, dataset, name, weights_out, dict(result.metrics), result))
    registered = register_weights(name, weights_out) if register else None
    return {"weights": weights_out, "sidecar": side, "run_dir": os.fspath(result.run_dir),
            "metrics": dict(result.metrics), "registered": registered}  # fmt: skip


def _sidecar(spec, dataset, name, weights_out, metrics, result):
    """The converter's sidecar fields (weights_converter.convert), plus what the pre-training was."""
    recipe, init_path = spec.recipe, spec.weights_path
    return {
        "name": name,
        "source": os.path.basename(init_path) if init_path else spec.weights,
        "source_sha256": sha256_file(init_path) if init_path else None,
        "format": "tfmedbench-pretrain",
        "depths": list(recipe.depths),
        "width": recipe.width,
        "ignored": {"pre-training head (not part of the backbone)": 1},
        "ignored_keys": ["fc"],
        "notes": [f"continual supervised pre-training on {dataset} ({recipe.builder}, "
                  f"{recipe.num_outputs} labels, sigmoid + BCE) starting from {spec.weights}"],
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                          "note": "trained on RGB in [0, 1] normalised with ImageNet mean/std"},
        "parity": None,  # trained in Keras: there is no other framework's model to compare with
        "versions": metrics.get("versions") or versions(),
        "sha256": sha256_file(weights_out),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "pretrain": {
            "dataset": dataset, "builder": recipe.builder, "recipe": spec.task,
            "labels": list(recipe.labels), "uncertainty_policy": recipe.uncertainty_policy or None,
            "init": spec.weights, "init_path": init_path, "seed": spec.seed,
            "run_dir": os.path.relpath(os.fspath(result.run_dir), os.path.dirname(weights_out)),
            "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch"),
            "best_val_loss": metrics.get("best_val_loss"), "test_metric": metrics.get("metric"),
            "test_score": metrics.get("score"), "recipe_fields": recipe.to_dict(),
        },
    }  # fmt: skip


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
