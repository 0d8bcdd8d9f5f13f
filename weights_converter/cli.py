"""Click objects the tfmedbench CLI mounts: `weights` (list, fetch) and `convert`."""

from __future__ import annotations

import os

import click

from weights_converter import registry


@click.group("weights")
def weights():
    """The paper's initializations: list them, fetch and convert them."""


@weights.command("list")
@click.option("--name", "only", default=None, help="Show one initialization in full.")
def list_weights(only):
    """Every initialization: format, cache state, source file and citation."""
    from weights_converter import api

    records = [registry.lookup(only)] if only else registry.RECORDS
    for record in records:
        cached = record.format is None or os.path.exists(api.converted_path(record.name))
        aliases = f" (aliases: {', '.join(record.aliases)})" if record.aliases else ""
        click.echo(f"{record.name}  [{record.category}; format {record.format or '-'}; "
                   f"cached {'yes' if cached else 'no'}]  {record.paper_name}{aliases}")
        for source in record.files[:1]:
            more = f" (+{len(record.files) - 1} files)" if len(record.files) > 1 else ""
            click.echo(f"    source:   {source.url}{more}")
        if record.manual:
            click.echo(f"    download: {record.manual}")
        if record.citation:
            click.echo(f"    cite:     {record.citation}")
    click.echo(f"{len(registry.RECORDS) - 1} pre-trained initializations + random; "
               f"cache: {api.weights_dir()}")


@weights.command("fetch")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download and convert again even if cached.")
def fetch_weights(name, force):
    """Download NAME (resuming), verify its sha256, convert and cache it."""
    from weights_converter import api

    path = api.fetch_name(name, force=force)
    click.echo(path if path else f"{name}: nothing to fetch (random initialization)")


@click.command("convert")
@click.argument("src", type=click.Path(exists=False))
@click.option("--format", "fmt", default=None, help="Source format; omitted: detected from keys.")
@click.option("--out", required=True, type=click.Path(), help="Output .weights.h5 path.")
@click.option("--name", default=None, help="Name recorded in the JSON sidecar.")
@click.option("--depths", default="3,4,6,3", hidden=True, help="Blocks per stage (tiny test nets).")
@click.option("--width", default=64, type=int, hidden=True, help="Stem width (tiny test nets).")
def convert(src, fmt, out, name, depths, width):
    """Convert a local checkpoint SRC to a Keras backbone .weights.h5 and prove parity."""
    from weights_converter import api
    from weights_converter import convert as conv
    from weights_converter.safe_load import INSTALL_CONVERT

    if not os.path.exists(src) and not os.path.exists(src + ".index"):
        raise click.BadParameter(f"{src}: no such file", param_hint="SRC")
    depths = tuple(int(d) for d in depths.split(","))
    have_torch = api._have_torch()  # noqa: SLF001 -- the parity check needs torch
    report = conv.convert(src, out, fmt=fmt, name=name, depths=depths, width=width, parity=have_torch)
    click.echo(conv.format_report(report))
    if not have_torch:
        click.echo(f"parity      skipped: the PyTorch reference needs torch: {INSTALL_CONVERT}")
    click.echo(f"wrote {out} (+ {os.path.basename(out)}.json)")
    if report.get("parity") and not report["parity"]["passed"]:
        raise click.ClickException("parity check FAILED: the converted backbone does not match")
