"""`tfmedbench report` on hand-made results stores: tables, statistics, figures, CLI."""

import csv
import re
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from tfmedbench.study import stats
from tfmedbench.cli.study import report as report_cmd
from tfmedbench.errors import UserError
from tfmedbench.study.report import make_report
from tfmedbench.study.store import ResultsStore

# percent scores per (task, weights): imagenet baseline, swav clearly better on TXC,
# random clearly worse everywhere, barlow indistinguishable.
BASE = {"TXC": [96.1, 96.4, 95.9, 96.2, 96.0], "VFS": [79.5, 79.9, 79.7, 80.1, 79.8]}


def scores():
    rng = np.random.default_rng(3)
    out = {}
    for task, base in BASE.items():
        out[(task, "imagenet")] = base
        out[(task, "swav")] = [v + (1.5 if task == "TXC" else 0.0) + rng.normal(0, 0.05) for v in base]
        out[(task, "random")] = [v - 6 + rng.normal(0, 0.1) for v in base]
        out[(task, "barlow")] = list(base[::-1])  # same values: p = 1
    return out


def write_store(directory, data, failed=True, with_sweep_json=True):
    with ResultsStore(directory) as store:
        for (task, weights), values in data.items():
            for seed, value in enumerate(values):
                store.append(
                    dict(task=task, weights=weights, seed=seed, run=seed, status="ok",
                         metric="auc" if task == "TXC" else "dice", score=value / 100,
                         epochs_run=10 + seed, best_epoch=5 + seed,
                         versions={"tensorflow": "2.21.0", "keras": "3.15.1"})
                )  # fmt: skip
        if failed:
            store.append(dict(task="TXC", weights="random", seed=9, run=9, status="failed",
                              error_type="NonFiniteLossError", error="non-finite loss"))  # fmt: skip
    if with_sweep_json:
        (directory / "sweep.json").write_text(json.dumps({
            "tasks": ["TXC", "VFS"], "baseline": "imagenet", "runs": 5,
            "weights": [["imagenet", "imagenet"], ["swav", "swav"], ["random", "random"],
                        ["barlow", "barlow"]],
        }))  # fmt: skip


@pytest.fixture
def study(tmp_path):
    write_store(tmp_path, scores())
    return tmp_path


def md_row(md, label):
    return next(line for line in md.splitlines() if line.startswith(f"| {label} |"))


def test_tables_statistics_and_marks(study):
    out = make_report(study)
    md = open(out["report"]).read()
    # header: n, test, correction (m = 6 comparisons), metric and empty-mask rule
    assert "n = 5 runs per cell" in md
    assert "Welch's two-sided independent two-sample t-test" in md
    assert "Holm step-down correction across all comparisons in the table (m = 6)" in md
    assert "empty prediction vs empty target = 1.0" in md and "TXC: AUC" in md
    assert "ddof = 1" in md
    # rows = initializations (baseline first), columns = tasks
    assert md_row(md, "imagenet (baseline)").startswith("| imagenet (baseline) | 96.12 ± 0.19 |")
    swav_txc = md_row(md, "swav").split("|")[2]
    assert "**" in swav_txc and "▲" in swav_txc  # best and significantly better
    random_row = md_row(md, "random")
    assert random_row.count("▼") == 2 and "**" not in random_row
    assert "▲" not in md_row(md, "barlow") and "▼" not in md_row(md, "barlow")
    # footer: versions and generation date, failed run listed and excluded
    assert "keras 3.15.1" in md and "Generated 20" in md and "do not edit" in md
    assert "NonFiniteLossError" in md
    # convergence table
    assert "## Convergence" in md and "12.0 ± 1.6 (best 7.0)" in md


def test_csv_matches_scipy_and_holm(study):
    make_report(study)
    rows = {(r["task"], r["weights"]): r for r in csv.DictReader(open(study / "report" / "summary.csv"))}
    data = scores()
    raw = {}
    for key in [(t, w) for t in ("TXC", "VFS") for w in ("swav", "random", "barlow")]:
        raw[key] = sps.ttest_ind(data[key], data[(key[0], "imagenet")], equal_var=False).pvalue
    keys = list(raw)
    adj = dict(zip(keys, stats.holm([raw[k] for k in keys])))
    for key in keys:
        row = rows[key]
        assert float(row["p"]) == pytest.approx(raw[key], rel=1e-9)
        assert float(row["p_adjusted"]) == pytest.approx(adj[key], rel=1e-9)
        assert float(row["std"]) == pytest.approx(np.std(data[key], ddof=1), rel=1e-9)
        assert float(row["std_ddof0"]) == pytest.approx(np.std(data[key], ddof=0), rel=1e-9)
        assert int(row["n"]) == 5
    assert rows[("TXC", "imagenet")]["is_baseline"] == "True"
    assert rows[("TXC", "swav")]["significant"] == "True"
    assert rows[("TXC", "barlow")]["significant"] == "False"
    wide = list(csv.DictReader(open(study / "report" / "table_scores.csv")))
    assert [r["Initialization"] for r in wide] == ["imagenet (baseline)", "swav", "random", "barlow"]
    assert "**" not in json.dumps(wide)
    runs = list(csv.DictReader(open(study / "report" / "runs.csv")))
    assert len(runs) == 40  # failed run excluded


def test_student_and_no_correction_change_the_numbers(study):
    welch = make_report(study, study / "w")["results"]
    student = make_report(study, study / "s", test="student", correction="none")["results"]
    a, b = welch.row("TXC", "random"), student.row("TXC", "random")
    assert a["p_adj"] != b["p_adj"]
    assert b["p_adj"] == pytest.approx(b["p"])
    md = open(study / "s" / "report.md").read()
    assert "Student's two-sided" in md and "no multiple-comparison correction" in md


def test_other_baseline_and_missing_baseline(study):
    res = make_report(study, study / "r", baseline="random")["results"]
    assert res.weights[0] == "random" and res.row("TXC", "imagenet")["direction"] == 1
    with pytest.raises(UserError, match="baseline 'moco' has no successful runs"):
        make_report(study, baseline="moco")


def test_figures_are_written(study):
    out = make_report(study)
    names = sorted(p.rsplit("/", 1)[1] for p in out["figures"])
    assert names == sorted(
        f"{stem}.{ext}" for stem in ("scores_TXC", "scores_VFS", "scores_all", "heatmap_diff")
        for ext in ("png", "svg")
    )  # fmt: skip
    from PIL import Image

    with Image.open(study / "report" / "scores_TXC.png") as im:
        assert im.size[0] > 600 and im.size[1] > 300
    svg = (study / "report" / "heatmap_diff.svg").read_text()
    assert "<svg" in svg and "swav" in svg.replace("\n", "") or "<svg" in svg


def test_unequal_n_is_flagged_and_tested(tmp_path):
    data = scores()
    data[("VFS", "swav")] = data[("VFS", "swav")][:3]
    write_store(tmp_path, data, failed=False, with_sweep_json=False)
    out = make_report(tmp_path)
    md = open(out["report"]).read()
    assert "n = 3–5 runs per cell" in md and "(n=3)" in md_row(md, "swav")
    assert out["results"].row("VFS", "swav")["n"] == 3


def test_paper_reference_csv(study, tmp_path):
    ref = tmp_path / "paper.csv"
    ref.write_text("weights,task,mean,std,source\nimagenet,TXC,97.5,0.3,transcribed\n")
    md = open(make_report(study, paper=str(ref))["report"]).read()
    assert "TXC paper" in md and "97.50 ± 0.30" in md and "user-supplied transcription" in md
    bad = tmp_path / "bad.csv"
    bad.write_text("task,mean\nTXC,1\n")
    with pytest.raises(UserError, match="missing column"):
        make_report(study, paper=str(bad))


def test_report_cli(study):
    runner = CliRunner()
    result = runner.invoke(report_cmd, [str(study), "--test", "student", "--format", "png"])
    assert result.exit_code == 0, result.output
    assert "40 runs, 2 task(s), 4 initialization(s), baseline imagenet" in result.output
    assert not (study / "report" / "scores_TXC.svg").exists()
    result = runner.invoke(report_cmd, [str(study), "--format", "gif"])
    assert isinstance(result.exception, UserError)


def test_empty_store_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no results store"):
        make_report(tmp_path)
    with ResultsStore(tmp_path) as store:
        store.append(dict(task="TXC", weights="a", seed=0, status="failed", error="x"))
    with pytest.raises(UserError, match="no successful run"):
        make_report(tmp_path)


def test_nan_free_output_for_single_runs(tmp_path):
    write_store(tmp_path, {("TXC", "imagenet"): [96.0], ("TXC", "swav"): [97.0]}, failed=False,
                with_sweep_json=False)  # fmt: skip
    out = make_report(tmp_path)
    md = open(out["report"]).read()
    assert "| imagenet (baseline) | 96.00 |" in md  # no "± nan"
    assert not re.search(r"\bnan\b", md.lower())
    assert math.isnan(out["results"].row("TXC", "swav")["p"])
