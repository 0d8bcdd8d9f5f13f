"""Study commands of the `tfmedbench` CLI: benchmark, report, pretrain, export.

Mounted lazily by `tfmedbench.cli`; heavy imports happen inside the commands.
"""

from __future__ import annotations

import os

import click

from tfmedbench.cli.options import overrides_from, run_options, spec_kwargs
from tfmedbench.errors import UserError


def _benchmark_run_options(func):
    return run_options(func, per_task_manual_dir=True)


# --------------------------------------------------------------------------- benchmark
@click.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="sweep.yaml with any of the options below (command-line values win).")
@click.option("--tasks", help="Comma-separated task codes, e.g. TXC,VFS.")
@click.option("--weights", "weights", multiple=True, help="Comma-separated initializations: registry names, files, or LABEL=FILE.")
@click.option("--runs", type=int, help="Seeds per (task, initialization) pair, e.g. 10.")
@click.option("--output", type=click.Path(file_okay=False), help="Sweep directory (results store, run dirs).")
@click.option("--baseline", help="Initialization the report compares with [default: imagenet if present, else the first].")
@click.option("--base-seed", type=int, help="Run r uses seed base_seed + r [default: 0].")
@click.option("--retry-failed", is_flag=True, default=None, help="Run again the cells recorded as failed.")
@click.option("--max-cells", type=int, default=None, help="Stop after this many cells (the rest run on the next call).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None, help="local: the cells one after another in this process [default]; ray: each cell a Ray task on a cluster (README, 'Running a study on a cluster').")
@click.option("--address", default=None, help="--executor ray: auto (RAY_ADDRESS, or the cluster `ray start` began on this node) or the head's HOST:PORT [default: start Ray on this machine for the sweep].")
@click.option("--gpus-per-run", type=float, default=None, help="--executor ray: GPUs per cell; a fraction, e.g. 0.25, packs runs onto one GPU (TF memory growth on) [default: 0].")
@click.option("--cpus-per-run", type=float, default=None, help="--executor ray: CPUs per cell [default: 1].")
@_benchmark_run_options
def benchmark(config_path, tasks, weights, runs, output, baseline, base_seed, retry_failed, max_cells,
              executor, address, gpus_per_run, cpus_per_run, **kwargs):  # fmt: skip
    """Run every cell (one run: task x initialization x seed, and protocol x label fraction
    when given); resumable: re-run the same command to continue.

    Each finished run is appended to OUTPUT/results.jsonl (fsync'ed); a killed sweep re-run with
    the same command skips finished cells and resumes the interrupted one from its last epoch.
    Everything (settings, recipes, every weights file) is checked before anything is written.
    """
    from tfmedbench.study import config as config_lib
    from tfmedbench.study import sweep

    data = _read_sweep_yaml(config_path)
    output = output or data.get("output")
    if not output:
        raise UserError("the sweep needs --output DIR (or `output:` in --config)")
    if "://" in str(output):  # the store's flock and fsync need a POSIX file system
        raise UserError(f"--output {output}: give a file system path (a bucket works mounted, e.g. "
                        "with gcsfuse, at the same path on every node)")  # fmt: skip
    cli = dict(
        tasks=tuple(config_lib._split_list(tasks)) if tasks else None,
        weights=config_lib.parse_weights(weights) if weights else None,
        runs=runs, baseline=baseline, base_seed=base_seed, retry_failed=retry_failed,
        overrides=overrides_from(kwargs), data_dir=kwargs["data_dir"],
        data_config=kwargs["data_config"],
        manual_dir=config_lib.parse_manual_dirs(kwargs["manual_dir"]),
        strategy=kwargs["strategy"], tpu=kwargs["tpu"], precision=kwargs["precision"],
        jit_compile=kwargs["jit_compile"], allow_fetch=kwargs["fetch"],
        protocols=kwargs["protocols"], label_fractions=kwargs["label_fractions"],
        label_subset=kwargs["label_subset"], save_weights=kwargs["save_weights"],
        verbose=0 if kwargs["quiet"] else None, executor=executor, address=address,
        gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run,
    )  # fmt: skip
    config = config_lib.config_from_mapping(data, **cli)
    summary = sweep.run_sweep(config, output, stop_after=max_cells)
    click.echo(
        f"benchmark: {summary['ok']} run(s) finished, {summary['failed']} failed, "
        f"{summary['skipped']} already in the store, {summary['total']} cells in all"
    )
    click.echo(f"results: {os.path.join(os.path.abspath(output), 'results.jsonl')}")
    click.echo(f"report:  tfmedbench report {output}")


def _read_sweep_yaml(config_path):
    if not config_path:
        return {}
    import yaml

    try:
        with open(config_path) as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{config_path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{config_path}: expected a mapping of sweep settings")
    return data


# --------------------------------------------------------------------------- report
@click.command()
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--output", type=click.Path(file_okay=False), help="Report directory [default: SWEEP_DIR/report].")
@click.option("--baseline", help="Initialization to compare with [default: the sweep's].")
@click.option("--style", type=click.Choice(["paper", "tfmedbench"]), default="paper", show_default=True, help="paper: ± as np.std (ddof 0), Student's t-test, no correction (the paper's protocol); tfmedbench: ddof 1, Welch, Holm.")
@click.option("--test", type=click.Choice(["welch", "student"]), default=None, help="Override the style's two-sample t-test.")
@click.option("--correction", type=click.Choice(["holm", "none"]), default=None, help="Override the style's multiple-comparison correction.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--paper", "paper", type=click.Path(exists=True, dir_okay=False), help="CSV of reference numbers (weights,task,mean,std,source[,n,quantity,std_ddof]) replacing the bundled numbers of the paper.")
@click.option("--no-paper", is_flag=True, help="Leave the paper's numbers out of the report.")
@click.option("--no-paired", is_flag=True, help="Skip the paired tests (they read every run's predictions.npz).")
@click.option("--format", "formats", default="png,svg", show_default=True, help="Figure formats.")
def report(sweep_dir, output, baseline, style, test, correction, alpha, paper, no_paper, no_paired, formats):
    """Tables (Markdown, CSV) and figures (PNG, SVG) from SWEEP_DIR's results store.

    By default the paper's published numbers (bundled; `tfmedbench paper`) are shown beside the
    measured ones, with a test of consistency.
    """
    from tfmedbench.study.report import make_report

    fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in ("png", "svg", "pdf")]
    if bad or not fmts:
        raise UserError(f"--format: choose from png, svg, pdf (got {formats!r})")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha must be in (0, 1), got {alpha}")
    if paper and no_paper:
        raise UserError("--paper and --no-paper contradict each other; give one")
    out = make_report(sweep_dir, output, baseline=baseline, style=style, test=test,
                      correction=correction, alpha=alpha, paper=paper, show_paper=not no_paper,
                      paired=not no_paired, formats=fmts)  # fmt: skip
    study = out["study"]
    click.echo(
        f"report: {len(study.ok)} runs, {len(study.tasks)} task(s), {len(study.weights)} "
        f"initialization(s), baseline {study.baseline}, style {study.style} "
        f"({study.test}, correction {study.correction}, ddof {study.ddof})"
    )
    click.echo(f"  {out['report']}")
    click.echo(f"  {len(out['figures'])} figure file(s) in {out['dir']}")


# --------------------------------------------------------------------------- pretrain
@click.command()
@click.option("--dataset", required=True, type=click.Choice(["chexpert", "chestxray14"]), help="In-domain dataset to pre-train on (all its labels).")
@click.option("--init", default="imagenet", show_default=True, help="Starting weights: imagenet, random, a registry name or a .weights.h5 file.")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Directory for NAME.weights.h5, NAME.json and the run.")
@click.option("--name", help="Name of the new weights [default: <init>_<dataset>].")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--register", is_flag=True, help="Also register NAME in the weights registry.")
@run_options
def pretrain(dataset, init, output, name, seed, register, **kwargs):
    """Continual supervised pre-training (e.g. ImageNet -> CheXpert); saves a backbone for --weights."""
    from tfmedbench.study.pretrain import pretrain as run_pretrain

    out = run_pretrain(dataset, init, output, name=name, seed=seed,
                       overrides=overrides_from(kwargs), register=register,
                       **spec_kwargs(kwargs))  # fmt: skip
    m = out["metrics"]
    click.echo(f"pretrain {dataset} from {init}: test {m.get('metric')} = {m.get('score'):.4f}")
    click.echo(f"weights: {out['weights']}")
    click.echo(f"sidecar: {out['sidecar']}")
    if out["registered"]:
        click.echo(f"registered as {out['registered']}: --weights {out['registered']} works")
    click.echo(f"use it:  tfmedbench fit --task TXC --weights {out['weights']}")


# --------------------------------------------------------------------------- export
@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(["saved_model", "onnx"]))
@click.option("--output", type=click.Path(), help="Artifact path [default: RUN_DIR/export/saved_model or model.onnx].")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Max |export - Keras| allowed on the random-input check.")
def export(run_dir, fmt, output, atol):
    """Export a fine-tuned run for deployment, verify it against Keras, write a model card."""
    from tfmedbench.study.export import export_run

    out = export_run(run_dir, fmt, output, atol=atol)
    click.echo(f"exported {fmt}: {out['path']}")
    click.echo(
        f"verified with {out['check']['runtime']}: max |diff| = {out['check']['max_abs_diff']:.2e}"
        f" <= {atol:g}"
    )
    click.echo(f"model card: {out['model_card']}")


# --------------------------------------------------------------------------- rescore
@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Metric fields to change: dice_score=global|per-image, score_region=image|fov, scored_labels=A,B.")
def rescore(run_dir, sets):
    """Recompute RUN_DIR/metrics.json from its predictions.npz (after a metric option changes)."""
    from tfmedbench.cli.options import parse_sets
    from tfmedbench.train.rescore import rescore as run_rescore

    metrics = run_rescore(run_dir, parse_sets(sets))
    click.echo(f"{metrics['task']} {metrics['weights']} seed={metrics['seed']}: test "
               f"{metrics['metric']} = {metrics['score']:.4f} (was "
               f"{metrics['rescored_from']['score']:.4f})")  # fmt: skip
