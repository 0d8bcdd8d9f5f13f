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
        click.option("-q", "--quiet", is_flag=True, help="No per-epoch Keras progress."),
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


def runtime_kwargs(kwargs):
    """The device/runtime keyword arguments of `fit` from click kwargs, None -> "auto"."""
    return dict(
        strategy=kwargs["strategy"] or "auto",
        tpu=kwargs["tpu"],
        precision=kwargs["precision"] or "auto",
        jit_compile=kwargs["jit_compile"] or "auto",
        allow_fetch=bool(kwargs["fetch"]),
    )
