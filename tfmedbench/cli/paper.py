"""`tfmedbench paper`: the paper's published numbers (Tables 2-8), readable in a terminal."""

from __future__ import annotations

import click

from tfmedbench.errors import UserError


def _ms(item):
    return item.text() if item is not None else "–"


def _grid(header, rows):
    """Left-aligned fixed-width columns."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header).rstrip(), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(c) for c in r]).rstrip() for r in rows]
    return lines


def task_lines(task, rows, cells):
    """Every initialization the paper reports for `task`: canonical score, tables, epochs."""
    from tfmedbench import paper

    metric = next((r.metric for r in rows if r.quantity == "score"), "?")
    names = {}
    for r in rows:
        names.setdefault(r.weights, []).append(r.initialization)
    out = [f"{task} ({metric}, %; mean ± std over {paper.PAPER_N} runs as printed)"]
    table, notes = [], []
    for w, printed in names.items():
        score = cells.get((task, w, "score"))
        epochs = cells.get((task, w, "epochs"))
        label = " / ".join(dict.fromkeys(printed))
        table.append([label, w, _ms(score), ",".join(map(str, score.tables)) if score else "–",
                      _ms(epochs)])  # fmt: skip
        for v in (score.variants if score else ()):
            notes.append(f"  {w}: Table {v.table} prints {v.text()} (canonical: Table {score.table}, "
                         "the lowest-numbered table printing the cell)")  # fmt: skip
    out += _grid(
        ["initialization (as printed)", "registry name", "score", "tables", "epochs"], table
    )
    return out + notes


def table_lines(number, rows):
    """One table as the paper lays it out: initializations x tasks."""
    from tfmedbench import paper

    tasks = list(dict.fromkeys(r.task for r in rows))
    inits = list(dict.fromkeys(r.initialization for r in rows))
    by = {(r.initialization, r.task, r.quantity): r for r in rows}
    epochs = any(r.quantity == "epochs" for r in rows)
    header = ["initialization", "registry name"] + [
        f"{t} ({next(r.metric for r in rows if r.task == t and r.quantity == 'score')})"
        for t in tasks
    ]
    grid = []
    for name in inits:
        line = [name, paper.INITIALIZATIONS[name]]
        for t in tasks:
            s, e = by.get((name, t, "score")), by.get((name, t, "epochs"))
            text = _ms(s)
            if epochs:
                text += f" | {_ms(e)} ep" if e else " | –"
            line.append(text)
        grid.append(line)
    title = f"Table {number}: {paper.TABLES[number]}"
    if epochs:
        title += " (cells: score | epochs to early stop)"
    return [title] + _grid(header, grid)


@click.command()
@click.option("--task", help="ECC, DXC14, DXC5, TXC, LXS, VFS or PXS (any case) [default: all].")
@click.option("--table", "table", type=int, help="One of the paper's Tables 2-8, as printed.")
def paper(task, table):
    """The paper's published numbers (bundled; Hosseinzadeh Taher et al., DART 2021).

    Without --table: per task, every initialization's score (the canonical value when several
    tables print the cell, the differing prints listed below it) and convergence epochs. With
    --table N: that table as the paper lays it out (restricted to --task if given).
    """
    from tfmedbench import paper as paper_mod

    try:
        rows = paper_mod.cells_of(task=task, table=table)
    except ValueError as err:
        raise UserError(str(err)) from None
    lines = [f"Source: {paper_mod.CITATION}.", ""]
    if not rows:
        lines.append(f"Table {table} has no {str(task).upper()} numbers.")
    elif table is not None:
        lines += table_lines(table, rows)
    else:
        cells = paper_mod.canonical()
        for t in dict.fromkeys(r.task for r in rows):
            lines += task_lines(t, [r for r in rows if r.task == t], cells) + [""]
    click.echo("\n".join(lines).rstrip())
