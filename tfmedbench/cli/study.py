"""Study commands of the `tfmedbench` CLI: benchmark, report, pretrain, export.

Mounted lazily by `tfmedbench.cli`; heavy imports happen inside the commands.
"""

from __future__ import annotations

import os

import click

from tfmedbench.cli.options import overrides_from, run_options, runtime_kwargs
from tfmedbench.errors import UserError


def _benchmark_run_options(func):
    return run_options(func, per_task_manual_dir=True)


# --------------------------------------------------------------------------- benchmark
@click.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="sweep.yaml with any of the options below (command-line values win).")
@click.option("--tasks", help="Comma-separated task codes, e.g. TXC,VFS.")
@click.option("--weights", "weights", multiple=True, help="Comma-separated initializations: registry names, files, or LABEL=FILE.")
@click.option("--runs", type=int, help="Runs (seeds) per (task, weights) cell, e.g. 10.")
@click.option("--output", type=click.Path(file_okay=False), help="Sweep directory (results store, run dirs).")
@click.option("--baseline", help="Initialization the report compares with [default: imagenet if present, else the first].")
@click.option("--base-seed", type=int, help="Run r uses seed base_seed + r [default: 0].")
@click.option("--retry-failed", is_flag=True, default=None, help="Run again the cells recorded as failed.")
@click.option("--max-cells", type=int, default=None, help="Stop after this many cells (the rest run on the next call).")
@_benchmark_run_options
def benchmark(config_path, tasks, weights, runs, output, baseline, base_seed, retry_failed, max_cells, **kwargs):
    """Run every (task, weights, seed) cell; resumable: re-run the same command to continue.

    Each finished run is appended to OUTPUT/results.jsonl (fsync'ed); a killed sweep re-run with
    the same command skips finished cells and restarts only the interrupted one.
    """
    from tfmedbench.study import sweep

    data = {}
    if config_path:
        import yaml

        with open(config_path) as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise UserError(f"{config_path}: expected a mapping of sweep settings")
    output = output or data.get("output")
    if not output:
        raise UserError("the sweep needs --output DIR (or `output:` in --config)")
    quiet = kwargs.pop("quiet")
    cli = dict(
        tasks=tuple(sweep._split_list(tasks)) if tasks else None,
        weights=sweep.parse_weights(weights) if weights else None,
        runs=runs,
        baseline=baseline,
        base_seed=base_seed,
        retry_failed=retry_failed,
        overrides=overrides_from(kwargs),
        data_dir=kwargs["data_dir"],
        manual_dir=sweep.parse_manual_dirs(kwargs["manual_dir"]),
        strategy=kwargs["strategy"],
        tpu=kwargs["tpu"],
        precision=kwargs["precision"],
        jit_compile=kwargs["jit_compile"],
        allow_fetch=kwargs["fetch"],
        verbose=0 if quiet else None,
    )
    config = sweep.config_from_mapping(data, **cli)
    summary = sweep.run_sweep(config, output, stop_after=max_cells)
    click.echo(
        f"benchmark: {summary['ok']} run(s) finished, {summary['failed']} failed, "
        f"{summary['skipped']} already in the store, {summary['total']} cells in all"
    )
    click.echo(f"results: {os.path.join(os.path.abspath(output), 'results.jsonl')}")
    click.echo(f"report:  tfmedbench report {output}")


# --------------------------------------------------------------------------- report
@click.command()
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--output", type=click.Path(file_okay=False), help="Report directory [default: SWEEP_DIR/report].")
@click.option("--baseline", help="Initialization to compare with [default: the sweep's].")
@click.option("--test", type=click.Choice(["welch", "student"]), default="welch", show_default=True, help="Independent two-sample t-test variant.")
@click.option("--correction", type=click.Choice(["holm", "none"]), default="holm", show_default=True, help="Multiple-comparison correction across the table.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--paper", "paper", type=click.Path(exists=True, dir_okay=False), help="CSV of published reference numbers (weights,task,mean,std,source) to show beside the results. The paper's numbers are not bundled (not verifiable here).")
@click.option("--format", "formats", default="png,svg", show_default=True, help="Figure formats.")
def report(sweep_dir, output, baseline, test, correction, alpha, paper, formats):
    """Tables (Markdown, CSV) and figures (PNG, SVG) from SWEEP_DIR's results store."""
    from tfmedbench.study.report import make_report

    fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in ("png", "svg", "pdf")]
    if bad or not fmts:
        raise UserError(f"--format: choose from png, svg, pdf (got {formats!r})")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha must be in (0, 1), got {alpha}")
    out = make_report(sweep_dir, output, baseline=baseline, test=test, correction=correction,
                      alpha=alpha, paper=paper, formats=fmts)  # fmt: skip
    res = out["results"]
    click.echo(
        f"report: {len(res.ok)} runs, {len(res.tasks)} task(s), {len(res.weights)} "
        f"initialization(s), baseline {res.baseline}"
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

    quiet = kwargs.pop("quiet")
    overrides = overrides_from(kwargs)
    out = run_pretrain(
        dataset,
        init,
        output,
        name=name,
        data_dir=kwargs["data_dir"],
        manual_dir=kwargs["manual_dir"],
        seed=seed,
        overrides=overrides,
        **runtime_kwargs(kwargs),
        register=register,
        verbose=0 if quiet else 1,
    )
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
