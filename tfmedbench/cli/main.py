"""The `tfmedbench` command line.

Subcommands import their heavy dependencies (TensorFlow, torch) only when they run, so
`tfmedbench --help` is instant and `tfmedbench fit` never imports torch.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from tfmedbench.cli.options import overrides_from, run_options, spec_kwargs
from tfmedbench.errors import UserError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations calls the network else
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Commands defined in other modules, loaded on first use: name -> "module:attribute".
LAZY_COMMANDS = {
    "weights": "weights_converter.cli:weights",
    "convert": "weights_converter.cli:convert",
    "benchmark": "tfmedbench.cli.study:benchmark",
    "report": "tfmedbench.cli.study:report",
    "pretrain": "tfmedbench.cli.study:pretrain",
    "export": "tfmedbench.cli.study:export",
    "rescore": "tfmedbench.cli.study:rescore",
    "paper": "tfmedbench.cli.paper:paper",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="tfmedbench")
@click.pass_context
def cli(ctx, debug):
    """Which pre-trained initialization should I fine-tune for my medical imaging task?"""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command()
@click.option("--task", required=True, help="ECC, DXC14, DXC5, TXC, LXS, VFS or PXS (any case).")
@click.option("--weights", default="random", show_default=True, help="Registry name (`tfmedbench weights list`) or a weights file.")
@click.option("--weights-format", default=None, help="Format of a local checkpoint given to --weights (default: detected; see `tfmedbench weights list`).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--output", type=click.Path(), help="Run directory (default: runs/<task>-<weights>-s<seed>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --output from its last finished epoch.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --output.")
@run_options
def fit(task, weights, weights_format, seed, output, resume, overwrite, **kwargs):
    """Fine-tune WEIGHTS on TASK and evaluate on its test split."""
    from tfmedbench.train.finetune import run
    from tfmedbench.train.spec import make_spec

    if resume and not output:
        raise UserError("--resume needs --output RUN_DIR (the interrupted run's folder)")
    spec = make_spec(task, weights, overrides=overrides_from(kwargs), seed=seed,
                     output_dir=output, resume=resume, overwrite=overwrite,
                     weights_format=weights_format, **spec_kwargs(kwargs))  # fmt: skip
    result = run(spec)
    m = result.metrics
    click.echo(f"{m['task']} {m['weights']} seed={m['seed']}: test {m['metric']} = {m['score']:.4f}")
    click.echo(f"run directory: {result.run_dir}")


@cli.command()
@click.option("--workdir", type=click.Path(), default=None, help="Where to write the synthetic data and the run (default: ./tfmedbench-demo).")
@click.option("--images", default=240, show_default=True, help="Synthetic Shenzhen-layout images.")
@click.option("--epochs", default=4, show_default=True)
@click.option("--image-size", default=96, show_default=True)
@click.option("--seed", default=0, show_default=True)
def demo(workdir, images, epochs, image_size, seed):
    """Fine-tune a full ResNet-50 on a synthetic NIH-Shenzhen-layout dataset (no data, no network)."""
    from tfmedbench.demo import run_demo

    result = run_demo(workdir or "tfmedbench-demo", images, epochs, image_size, seed)
    m = result.metrics
    click.echo(f"demo: test AUC = {m['score']:.4f} (TXC, random init, {m['epochs_run']} epochs)")
    click.echo(f"run directory: {result.run_dir}")


@cli.command("tasks")
@click.argument("task", required=False)
def tasks_cmd(task):
    """List the task recipes, or print one resolved recipe as JSON."""
    from tfmedbench.tasks import RECIPES, get_recipe

    if task:
        click.echo(get_recipe(task).to_json())
        return
    for r in RECIPES.values():
        click.echo(f"{r.code:6} {r.kind:14} {r.metric:4} {r.image_size:4}px  {r.title}")


@cli.group()
def data():
    """Prepare the benchmark's datasets (TFDS builders in `datasets_tfds`)."""


@data.command("list")
@click.option("--data-dir", type=click.Path())
def data_list(data_dir):
    """Builders, their tasks, and whether they are built in DATA_DIR (and their other configs)."""
    from etils import epath

    from tfmedbench.data import prepare
    from tfmedbench.tasks import RECIPES

    def built(builder):
        # TFDS logs "Variant folder ... has no dataset_info.json" when asked about a dataset that
        # was never built (one warning per builder); look for that file first.
        return epath.Path(builder.data_dir, "dataset_info.json").exists() and prepare.is_built(
            builder
        )

    where = data_dir or prepare.default_data_dir()
    click.echo(f"data dir: {where}")
    for code, recipe in RECIPES.items():
        builder = prepare.get_builder(recipe.builder, where)
        default = builder.builder_config.name if builder.builder_config else None
        others = []
        for config in builder.BUILDER_CONFIGS:
            if config.name != default:
                other = prepare.get_builder(f"{recipe.builder}/{config.name}", where)
                others.append(config.name + (" [built]" if built(other) else ""))
        name = f"{builder.name}/{default}" if default else builder.name
        state = "built" if built(builder) else "not built"
        also = f"  other configs: {', '.join(others)}" if others else ""
        click.echo(f"{code:6} {name:38} v{builder.version}  {state:9}{also}")


@data.command("info")
@click.argument("task")
def data_info(task):
    """The manual-download instructions and expected tree of TASK's dataset."""
    from tfmedbench.data import prepare
    from tfmedbench.tasks import get_recipe

    builder = prepare.get_builder(get_recipe(task).builder)
    click.echo(f"{builder.name} v{builder.version}\n")
    click.echo(builder.MANUAL_DOWNLOAD_INSTRUCTIONS)


@data.command("build")
@click.argument("task")
@click.option("--manual-dir", required=True, type=click.Path())
@click.option("--data-dir", type=click.Path())
def data_build(task, manual_dir, data_dir):
    """Build TASK's TFDS dataset from the raw files in MANUAL_DIR (progress shown)."""
    from tfmedbench.data import prepare
    from tfmedbench.tasks import get_recipe

    recipe = get_recipe(task)
    builder = prepare.build(recipe.builder, manual_dir, data_dir)
    for split, info in builder.info.splits.items():
        click.echo(f"{builder.name} {split}: {info.num_examples} examples")
    click.echo(f"built in {builder.data_dir}")


def _dataset_error():
    """datasets_tfds' DatasetError once that package is loaded (before, nothing can raise it):
    importing it up front would load TensorFlow for every `tfmedbench --help`."""
    errors = sys.modules.get("datasets_tfds.errors")
    return errors.DatasetError if errors is not None else UserError


def main(argv=None):
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.UsageError as err:  # bad options: click's usage hint, then one line
        if err.ctx is not None:
            click.echo(err.ctx.get_usage(), err=True)
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except (UserError, _dataset_error()) as err:
        if debug:
            raise
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        click.echo(f"error: {type(err).__name__}: {err} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
