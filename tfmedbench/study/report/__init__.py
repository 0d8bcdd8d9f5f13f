"""`tfmedbench report`: tables and figures generated from a sweep's results store.

Everything in the report directory is regenerated on each call from `results.jsonl` (and the
run folders' metrics.json / predictions.npz); nothing is meant to be edited by hand.
"""

from __future__ import annotations

import os

from tfmedbench.study.report import figures, runs, tables
from tfmedbench.study.report.data import Study, StudyResults
from tfmedbench.study.report.paper import bundled_reference, load_reference, paper_comparisons

REPORT_NAME = "report.md"


def make_report(sweep_dir, out_dir=None, baseline=None, style="paper", test=None,
                correction=None, alpha=0.05, paper=None, show_paper=True, paired=True,
                formats=figures.FORMATS):  # fmt: skip
    """Write report.md, CSVs and figures for `sweep_dir`; return {name: path, ...}.

    style: "paper" (np.std ddof 0, Student, no correction) | "tfmedbench" (ddof 1, Welch, Holm);
    test / correction override the style. paper: a reference CSV replacing the bundled numbers;
    show_paper=False leaves the paper out. paired=False skips the paired tests (they read every
    run's predictions.npz). formats: figure file types; () draws no figures.
    """
    study = Study(sweep_dir, baseline=baseline, style=style, test=test, correction=correction,
                  alpha=alpha)  # fmt: skip
    out_dir = os.fspath(out_dir or os.path.join(sweep_dir, "report"))
    os.makedirs(out_dir, exist_ok=True)
    reference = None
    if show_paper:
        reference = load_reference(paper) if paper else bundled_reference()
    extras, fig_paths = {}, []
    for res in study.slices:
        ci_rows, ci_notes = runs.ci_rows(res)
        paired_rows, paired_notes = runs.paired_rows(res) if paired else ([], [])
        extras[res.key] = dict(paper=paper_comparisons(res, reference), ci=ci_rows,
                               ci_notes=ci_notes, paired=paired_rows,
                               paired_notes=paired_notes)  # fmt: skip
        if formats:  # formats=() draws no figures (drawing is most of a report's time)
            for task in res.tasks:
                fig_paths += figures.task_figure(res, task, out_dir, formats)
            if len(res.tasks) > 1:
                fig_paths += figures.overview_figure(res, out_dir, formats)
            fig_paths += figures.heatmap_figure(res, out_dir, formats)
    efficiency = tables.efficiency_data(study)
    for entry in efficiency.values() if formats else ():
        fig_paths += figures.efficiency_figure(entry, study.baseline, out_dir, formats)
    csvs = tables.write_csvs(study, out_dir, extras, efficiency)

    md = ["# Benchmark report", "", f"Sweep: `{os.path.abspath(sweep_dir)}`", ""]
    md += tables.header_lines(study, reference) + [""]
    multi = len(study.slices) > 1
    for res in study.slices:
        md += _slice_section(res, extras[res.key], reference, multi, paired)
    if efficiency:
        md += _efficiency_section(study, efficiency)
    md += _failed_section(study)
    md += ["## Figures", ""]
    for path in fig_paths:
        if path.endswith(".png"):
            name = os.path.basename(path)
            md += [f"![{name}]({name})", ""]
    md += ["---", ""] + [f"{line}  " for line in tables.footer_lines(study)]
    report_path = os.path.join(out_dir, REPORT_NAME)
    tmp = report_path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(md).rstrip() + "\n")
    os.replace(tmp, report_path)
    return {"report": report_path, "dir": out_dir, "figures": fig_paths, "csv": csvs,
            "results": study.main, "study": study}  # fmt: skip


def _slice_section(res, extra, reference, multi, paired):
    h = "###" if multi else "##"
    md = [f"## {res.title[0].upper()}{res.title[1:]}", ""] if multi else []
    if extra["paper"]:
        md += [
            f"{h} The paper beside the measured numbers",
            "",
            tables.paper_caption(res, reference),
            "",
        ]
        md += [tables.markdown_table(tables.paper_table(res, extra["paper"])), ""]
    md += [f"{h} Test scores (%)", "", tables.score_caption(res), ""]
    md += [tables.markdown_table(tables.score_cells(res).values()), ""]
    md += [
        f"{h} Comparisons with the baseline (across-seed t-test)",
        "",
        tables.comparison_caption(res),
        "",
    ]
    comp = tables.comparison_rows(res)
    md += [tables.markdown_table(comp) if comp else "Only the baseline has results.", ""]
    md += [f"{h} Convergence: epochs until early stopping", "", tables.convergence_caption(res), ""]
    md += [tables.markdown_table(tables.convergence_cells(res)), ""]
    md += [f"{h} Per-run bootstrap confidence intervals", ""]
    if extra["ci"]:
        md += [
            tables.ci_caption(extra["ci"]),
            "",
            tables.markdown_table(tables.ci_table(res, extra["ci"])),
            "",
        ]
    else:
        md += ['No run folder has a bootstrap CI (`metrics.json` without "ci").', ""]
    md += [f"- {note}" for note in extra["ci_notes"]] + ([""] if extra["ci_notes"] else [])
    md += [f"{h} Paired tests vs the baseline on the same test images", ""]
    if not paired:
        md += ["Skipped (`--no-paired`).", ""]
    elif extra["paired"]:
        md += [
            tables.paired_caption(res),
            "",
            tables.markdown_table(tables.paired_table(res, extra["paired"])),
            "",
        ]
    else:
        md += [
            "No pair of runs with predictions (`predictions.npz` with `image_id`) to compare.",
            "",
        ]
    md += [f"- {note}" for note in extra["paired_notes"]] + ([""] if extra["paired_notes"] else [])
    return md


def _efficiency_section(study, efficiency):
    md = ["## Label efficiency", ""]
    for (task, protocol), entry in efficiency.items():
        md += [f"### {task}, {protocol}", "", tables.efficiency_caption(study, entry), ""]
        md += [tables.markdown_table(tables.efficiency_table(entry)), ""]
    return md


def _failed_section(study):
    if not study.failed:
        return []
    rows = [{
        "Task": r["task"], "Initialization": r["weights"], "Seed": r["seed"],
        "Slice": r.get("protocol", "finetune") + f" {float(r.get('label_fraction') or 1.0):g}",
        "Attempts": r.get("attempts", 1),
        "Error": f"{r.get('error_type', '?')}: {str(r.get('error', ''))[:120]}".replace("|", "/"),
    } for r in study.failed]  # fmt: skip
    return ["## Failed runs (not in the statistics)", "", tables.markdown_table(rows), ""]


__all__ = ["Study", "StudyResults", "make_report"]
