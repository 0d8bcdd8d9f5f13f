"""Training options shared by `fit`, `benchmark` and `pretrain` (same names, same meanings).

Defaults are None so a sweep's --config file can fill what the command line leaves out; the
commands resolve None to "auto".
"""

from __future__ import annotations

import click

from tfmedbench.errors import UserError

OVERRIDE_OPTIONS = ("epochs", "batch_size", "image_size", "lr", "patience", "uncertainty_policy")


def run_options(func, per_task_manual_dir=False):
    manual_help = (
        "Raw dataset files, TASK=DIR per task (repeatable) or one DIR for all tasks; builds "
        "the TFDS datasets when needed."
        if per_task_manual_dir
        else "Raw dataset files (builds the TFDS dataset if needed)."
    )
    options = [
        click.option("--manual-dir", "manual_dir", multiple=per_task_manual_dir, type=str, help=manual_help),
        click.option("--data-dir", type=click.Path(), help="TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)."),
        click.option("--data-config", default=None, help="Builder config of the task's dataset, e.g. paper_split (the original's split lists) [default: the builder's default]."),
        click.option("--epochs", type=int, help="Max epochs (recipe default per task)."),
        click.option("--batch-size", type=int, help="Per-replica batch size."),
        click.option("--image-size", type=int, help="Input size (square)."),
        click.option("--lr", type=float, help="Initial learning rate."),
        click.option("--patience", type=int, help="Early-stopping patience (epochs)."),
        click.option("--uncertainty-policy", type=click.Choice(["u-ones", "u-zeros", "lsr-ones", "lsr-zeros"]), help="DXC5: how uncertain CheXpert labels are trained."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any recipe field (repeatable)."),
        click.option("--strategy", default=None, type=click.Choice(["auto", "cpu", "mirrored", "multiworker", "tpu"]), help="Distribution strategy [default: auto]."),
        click.option("--tpu", default=None, help="TPU name or address for --strategy tpu."),
        click.option("--precision", default=None, type=click.Choice(["auto", "float32", "mixed_float16", "mixed_bfloat16"]), help="[default: auto: mixed_float16 on GPUs, mixed_bfloat16 on TPUs, float32 on CPUs]"),
        click.option("--jit-compile", default=None, type=click.Choice(["auto", "true", "false"]), help="XLA [default: auto: on for accelerators, off on CPUs]"),
        click.option("--fetch/--no-fetch", default=None, help="Allow downloading registry weights."),
        click.option("--label-subset", type=click.Choice(["fixed", "per-run"]), default=None, help="With a label fraction < 1: one subset for every seed (the original's fixed draw) or one per seed [default: fixed]."),
        click.option("--save-weights", type=click.Choice(["best", "backbone", "none"]), default=None, help="Weight files each run keeps [default: best for fit, none for benchmark]."),
        click.option("-q", "--quiet", is_flag=True, help="No per-epoch Keras progress."),
    ]
    if per_task_manual_dir:  # benchmark: axes of the grid
        options += [
            click.option("--protocols", default=None, help="Comma-separated protocols: finetune, linear (classification), frozen-encoder (segmentation) [default: finetune]."),
            click.option("--label-fractions", default=None, help="Comma-separated fractions of the training labels, e.g. 0.01,0.1,1 [default: 1]."),
        ]
    else:
        options += [
            click.option("--protocol", type=click.Choice(["finetune", "linear", "frozen-encoder"]), default="finetune", show_default=True, help="finetune (the paper) | linear probe of a frozen backbone | decoder on a frozen encoder."),
            click.option("--label-fraction", type=float, default=1.0, show_default=True, help="Fraction of the training split's labels to train on (validation and test unchanged)."),
        ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_sets(values):
    """`--set key=value` pairs -> dict of recipe overrides (typed later by the Recipe)."""
    out = {}
    for item in values or ():
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set patience=5")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def overrides_from(kwargs):
    """Pop --set and the dedicated override options from click kwargs into one dict."""
    overrides = parse_sets(kwargs.pop("sets", ()))
    for key in OVERRIDE_OPTIONS:
        value = kwargs.pop(key, None)
        if value is not None:
            overrides[key] = value
    return overrides


def runtime_of(kwargs):
    """The validated runtime options (strategy, precision, XLA) from click kwargs."""
    from tfmedbench.train.spec import make_runtime

    return make_runtime(kwargs["strategy"] or "auto", kwargs["tpu"], kwargs["precision"] or "auto",
                        kwargs["jit_compile"] or "auto")  # fmt: skip


def spec_kwargs(kwargs, save_weights_default="best"):
    """`make_spec` keyword arguments shared by fit and pretrain, from click kwargs."""
    return dict(
        data_dir=kwargs["data_dir"],
        manual_dir=kwargs["manual_dir"],
        data_config=kwargs["data_config"],
        runtime=runtime_of(kwargs),
        allow_fetch=bool(kwargs["fetch"]),
        protocol=kwargs["protocol"],
        label_fraction=kwargs["label_fraction"],
        label_subset=kwargs["label_subset"] or "fixed",
        save_weights=kwargs["save_weights"] or save_weights_default,
        verbose=0 if kwargs["quiet"] else 1,
    )
