"""`tfmedbench report`: tables and figures generated from a sweep's results store.

Everything in the report directory is regenerated on each call from `results.jsonl`; nothing is
meant to be edited by hand.
"""

from __future__ import annotations

import os

from tfmedbench.study.report import figures, tables
from tfmedbench.study.report.data import StudyResults
from tfmedbench.study.report.paper import load_reference

REPORT_NAME = "report.md"


def make_report(
    sweep_dir,
    out_dir=None,
    baseline=None,
    test="welch",
    correction="holm",
    alpha=0.05,
    paper=None,
    formats=figures.FORMATS,
):
    """Write report.md, CSVs and figures for `sweep_dir`; return {name: path}."""
    res = StudyResults(sweep_dir, baseline=baseline, test=test, correction=correction, alpha=alpha)
    out_dir = os.fspath(out_dir or os.path.join(sweep_dir, "report"))
    os.makedirs(out_dir, exist_ok=True)
    reference = load_reference(paper) if paper else None

    tables.write_csvs(res, out_dir, reference)
    fig_paths = []
    for task in res.tasks:
        fig_paths += figures.task_figure(res, task, out_dir, formats)
    if len(res.tasks) > 1:
        fig_paths += figures.overview_figure(res, out_dir, formats)
    fig_paths += figures.heatmap_figure(res, out_dir, formats)

    md = ["# Benchmark report", ""]
    md += [f"Sweep: `{os.path.abspath(sweep_dir)}`", ""]
    md += tables.header_lines(res, paper)
    md += ["", "## Test scores (%)", "", tables.markdown_table(tables.score_cells(res, reference).values()), ""]
    md += ["## Comparisons with the baseline", ""]
    comp = tables.comparison_rows(res)
    md += [tables.markdown_table(comp) if comp else "Only the baseline has results.", ""]
    md += ["## Convergence: epochs until early stopping (mean ± std; mean best epoch)", ""]
    md += [tables.markdown_table(tables.convergence_cells(res)), ""]
    if res.failed:
        md += ["## Failed runs (not in the statistics)", ""]
        md += [
            tables.markdown_table(
                {
                    "Task": r["task"],
                    "Initialization": r["weights"],
                    "Seed": r["seed"],
                    "Attempts": r.get("attempts", 1),
                    "Error": f"{r.get('error_type', '?')}: {str(r.get('error', ''))[:120]}".replace("|", "/"),
                }
                for r in res.failed
            ),
            "",
        ]
    md += ["## Figures", ""]
    for path in fig_paths:
        if path.endswith(".png"):
            name = os.path.basename(path)
            md += [f"![{name}]({name})", ""]
    md += ["---", ""] + [f"{line}  " for line in tables.footer_lines(res)]
    report_path = os.path.join(out_dir, REPORT_NAME)
    tmp = report_path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(md).rstrip() + "\n")
    os.replace(tmp, report_path)
    return {"report": report_path, "dir": out_dir, "figures": fig_paths, "results": res}


__all__ = ["StudyResults", "make_report"]
