"""`tfmedbench report` on hand-made results stores: tables, statistics, figures, CLI."""

import csv
import json
import math
import os
import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from tfmedbench.study import stats
from tfmedbench.cli.study import report as report_cmd
from tfmedbench.errors import UserError
from tfmedbench.study.report import make_report, tables
from tfmedbench.study.store import ResultsStore

# percent scores per (task, weights): imagenet baseline, swav clearly better on TXC,
# random clearly worse everywhere, barlow indistinguishable.
BASE = {"TXC": [96.1, 96.4, 95.9, 96.2, 96.0], "VFS": [79.5, 79.9, 79.7, 80.1, 79.8]}


def scores():
    rng = np.random.default_rng(3)
    out = {}
    for task, base in BASE.items():
        out[(task, "imagenet")] = base
        out[(task, "swav")] = [
            v + (1.5 if task == "TXC" else 0.0) + rng.normal(0, 0.05) for v in base
        ]
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
    out = make_report(study, style="tfmedbench", formats=())
    md = open(out["report"]).read()
    # header: n, test, correction (m = 6 comparisons), metric and empty-mask rule
    assert "n = 5 runs per cell" in md
    assert "Welch's two-sided independent two-sample t-test" in md
    assert "Holm step-down correction across all comparisons in the table (m = 6)" in md
    assert "empty prediction vs empty target = 1.0" in md and "TXC: AUC" in md
    assert "sample standard deviation (ddof = 1)" in md and "style **tfmedbench**" in md
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
    make_report(study, style="tfmedbench", formats=())
    rows = {
        (r["task"], r["weights"]): r for r in csv.DictReader(open(study / "report" / "summary.csv"))
    }
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
    assert [r["Initialization"] for r in wide] == [
        "imagenet (baseline)",
        "swav",
        "random",
        "barlow",
    ]
    assert "**" not in json.dumps(wide)
    runs = list(csv.DictReader(open(study / "report" / "runs.csv")))
    assert len(runs) == 40  # failed run excluded


def test_student_and_no_correction_change_the_numbers(study):
    welch = make_report(study, study / "w", style="tfmedbench", formats=())["results"]
    student = make_report(
        study, study / "s", style="tfmedbench", test="student", correction="none", formats=()
    )["results"]
    a, b = welch.row("TXC", "random"), student.row("TXC", "random")
    assert a["p_adj"] != b["p_adj"]
    assert b["p_adj"] == pytest.approx(b["p"])
    md = open(study / "s" / "report.md").read()
    assert "Student's two-sided" in md and "no multiple-comparison correction" in md


def test_other_baseline_and_missing_baseline(study):
    res = make_report(study, study / "r", baseline="random", formats=())["results"]
    assert res.weights[0] == "random" and res.row("TXC", "imagenet")["direction"] == 1
    with pytest.raises(UserError, match="baseline 'moco' has no successful runs"):
        make_report(study, baseline="moco", formats=())


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
    out = make_report(tmp_path, formats=())
    md = open(out["report"]).read()
    assert "n = 3–5 runs per cell" in md and "(n=3)" in md_row(md, "swav")
    assert out["results"].row("VFS", "swav")["n"] == 3


def test_paper_reference_csv(study, tmp_path):
    ref = tmp_path / "paper.csv"
    ref.write_text("weights,task,mean,std,source\nimagenet,TXC,97.5,0.3,transcribed\n")
    md = open(make_report(study, paper=str(ref), formats=())["report"]).read()
    section = md.split("## The paper beside the measured numbers")[1].split("## Test scores")[0]
    assert (
        "97.50 ± 0.30 (10)" in section
        and "user-supplied" in section
        and "| transcribed |" in section
    )
    assert "95.62" not in md  # the user's CSV replaces the bundled numbers
    assert section.count("| TXC (AUC) |") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("task,mean\nTXC,1\n")
    with pytest.raises(UserError, match="missing column"):
        make_report(study, paper=str(bad), formats=())


def test_report_cli(study):
    runner = CliRunner()
    result = runner.invoke(report_cmd, [str(study), "--test", "welch", "--format", "png"])
    assert result.exit_code == 0, result.output
    assert "40 runs, 2 task(s), 4 initialization(s), baseline imagenet" in result.output
    assert "style paper (welch, correction none, ddof 0)" in result.output  # --test overrides
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
    out = make_report(tmp_path, formats=())
    md = open(out["report"]).read()
    assert "| imagenet (baseline) | 96.00 |" in md  # no "± nan"
    assert not re.search(r"\bnan\b", md.lower())
    assert math.isnan(out["results"].row("TXC", "swav")["p"])


# --------------------------------------------------------------------------- the paper, style
def test_paper_style_is_the_default(study):
    out = make_report(study, formats=())
    res, md = out["results"], open(out["report"]).read()
    assert (res.style, res.test, res.correction, res.ddof) == ("paper", "student", "none", 0)
    assert "style **paper**" in md and "np.std (ddof = 0" in md
    data = scores()
    # ± is np.std(ddof=0); tests are Student's, uncorrected
    assert md_row(md, "imagenet (baseline)").startswith(
        f"| imagenet (baseline) | {np.mean(BASE['TXC']):.2f} ± {np.std(BASE['TXC']):.2f} |"
    )
    for key in [("TXC", "random"), ("VFS", "swav")]:
        row = res.row(*key)
        ref = sps.ttest_ind(data[key], data[(key[0], "imagenet")], equal_var=True)
        assert row["p"] == pytest.approx(ref.pvalue, rel=1e-9) and row["p_adj"] == row["p"]
    caption = next(line for line in md.splitlines() if line.startswith("*Mean ± np.std"))
    assert "Student's two-sided" in caption and "no multiple-comparison correction" in caption


def test_paper_numbers_beside_the_measured_ones(study):
    out = make_report(study, formats=())
    md = open(out["report"]).read()
    section = md.split("## The paper beside the measured numbers")[1].split("## Test scores")[0]
    assert "ttest_ind_from_stats" in section and "Student's two-sided t-test" in section
    assert "converted to ddof = 1" in section and "Tables 2–8 (bundled" in section
    assert "Paper reference: Hosseinzadeh Taher" in md  # the citation, in the header
    txc = next(line for line in section.splitlines() if line.startswith("| TXC (AUC) | imagenet |"))
    measured = np.asarray(BASE["TXC"])
    ref = sps.ttest_ind_from_stats(measured.mean(), measured.std(ddof=1), 5, 95.62,
                                   0.63 * math.sqrt(10 / 9), 10, equal_var=True)  # fmt: skip
    cells = [c.strip() for c in txc.split("|")]
    assert cells[3] == "95.62 ± 0.63 (10)" and cells[4] == "Table 2"
    assert cells[5] == f"{measured.mean():.2f} ± {measured.std():.2f} (5)"
    assert cells[8] == tables.fmt_p(ref.pvalue)
    assert cells[10] == ("consistent" if ref.pvalue > 0.05 else "differs (higher)")
    vfs = next(
        line for line in section.splitlines() if line.startswith("| VFS (Dice) | imagenet |")
    )
    assert "71.0 ± 18.3" in vfs and "12.0 ± 1.4" in vfs  # paper epochs (Table 6) | measured
    rows = list(csv.DictReader(open(study / "report" / "paper_comparison.csv")))
    assert len(rows) == 8  # 4 initializations x 2 tasks, all in the paper
    summary = {
        (r["task"], r["weights"]): r for r in csv.DictReader(open(study / "report" / "summary.csv"))
    }
    assert float(summary[("TXC", "imagenet")]["paper_mean"]) == 95.62
    hidden = open(make_report(study, show_paper=False, formats=())["report"]).read()
    assert "The paper beside" not in hidden and "95.62" not in hidden


def test_paper_variants_and_aliases_are_shown(tmp_path):
    write_store(tmp_path, {("DXC14", "random"): [80.2, 80.5, 80.4], ("DXC14", "supervised"): [81.5, 81.9, 81.7]},
                failed=False, with_sweep_json=False)  # fmt: skip
    md = open(make_report(tmp_path, formats=())["report"]).read()
    section = md.split("## The paper beside the measured numbers")[1]
    assert "Table 2 (Table 7 prints 80.40 ± 0.05)" in section  # canonical + the other print
    assert "| supervised | 81.70 ± 0.15 (10) |" in section  # registry alias of imagenet


# --------------------------------------------------------------------------- run folders
N_IMG = 150


def write_runs(directory, bad=None, dice_score="per-image"):
    """A store whose runs have run folders with metrics.json (+ ci) and predictions.npz."""
    from tfmedbench import metrics

    rng = np.random.default_rng(0)
    ids = np.array([f"img{i:04d}" for i in range(N_IMG)])
    y = (rng.random((N_IMG, 1)) < 0.4).astype(np.float32)
    tgt = rng.integers(0, 300, N_IMG).astype(float)
    tgt[:20] = 0
    sep = {"imagenet": 1.0, "swav": 2.5, "random": 0.2}
    with ResultsStore(directory) as store:
        for w, s in sep.items():
            for seed in range(3):
                run_dir = f"runs/TXC/{w}/seed-{seed}"
                os.makedirs(directory / run_dir)
                scores_ = y * s + rng.normal(size=y.shape)
                auc = metrics.per_class_auc(y, scores_, ["tuberculosis"])["tuberculosis"]
                ci = metrics.bootstrap_auc(y, scores_, ["tuberculosis"], n_boot=100, seed=seed)
                json.dump({"score": auc, "ci": ci}, open(directory / run_dir / "metrics.json", "w"))
                keep = ids if (bad, w, seed) != ("ids", "random", 1) else np.r_[ids[:-1], ["other"]]
                arrays = dict(scores=scores_, labels=y, label_names=np.array(["tuberculosis"]))
                if (bad, w, seed) != ("old", "random", 2):
                    arrays["image_id"] = keep
                np.savez_compressed(directory / run_dir / "predictions.npz", **arrays)
                store.append(dict(task="TXC", weights=w, seed=seed, status="ok", metric="auc", score=auc,
                                  run_dir=run_dir, epochs_run=10, best_epoch=5))  # fmt: skip
                if w == "random":
                    continue
                run_dir = f"runs/VFS/{w}/seed-{seed}"
                os.makedirs(directory / run_dir)
                pred = np.maximum(tgt + rng.normal(0, 40 if w == "imagenet" else 15, N_IMG), 0)
                pred[:10] = 0
                st = np.stack([np.minimum(pred, tgt), pred, tgt], 1)
                mean, glob, _ = metrics.dice_from_stats(st)
                ci = metrics.bootstrap_dice(st, n_boot=100, seed=seed)  # "score": per-image
                json.dump({"ci": ci}, open(directory / run_dir / "metrics.json", "w"))
                np.savez_compressed(
                    directory / run_dir / "predictions.npz", image_id=ids[::-1], dice_stats=st[::-1]
                )  # stored in another order
                store.append(dict(task="VFS", weights=w, seed=seed, status="ok", metric="dice",
                                  score=glob if dice_score == "global" else mean, run_dir=run_dir,
                                  extra={"dice_score": dice_score}, epochs_run=10, best_epoch=5))  # fmt: skip
    return directory


def test_per_run_cis_are_read_from_metrics_json(tmp_path):
    write_runs(tmp_path)
    out = make_report(tmp_path, formats=())
    md = open(out["report"]).read()
    section = (
        md.split("### Per-run bootstrap")[1]
        if "### Per-run" in md
        else md.split("## Per-run bootstrap")[1]
    )
    section = section.split("## Paired tests")[0]
    assert "NOT training variability" in section and "100 resamples" in section
    ci = json.load(open(tmp_path / "runs/TXC/swav/seed-1/metrics.json"))["ci"]["score"]
    row = next(line for line in section.splitlines() if line.startswith("| TXC (AUC) | swav | 1 |"))
    assert (
        f"[{100 * ci['low']:.2f}, {100 * ci['high']:.2f}]" in row
        and f"{100 * ci['estimate']:.2f}" in row
    )
    assert sum(1 for line in section.splitlines() if line.startswith("| TXC (AUC) |")) == 9
    assert sum(1 for line in section.splitlines() if line.startswith("| VFS (Dice) |")) == 6
    assert len(list(csv.DictReader(open(tmp_path / "report" / "run_ci.csv")))) == 15
    assert "is not the stored score" not in md


def test_global_dice_tasks_use_the_global_interval_and_test(tmp_path):
    write_runs(tmp_path, dice_score="global")
    md = open(make_report(tmp_path, formats=())["report"]).read()
    assert "VFS: global Dice over all test pixels" in md
    ci = json.load(open(tmp_path / "runs/VFS/swav/seed-0/metrics.json"))["ci"]["dice_global"]
    row = next(line for line in md.splitlines() if line.startswith("| VFS (Dice) | swav | 0 |"))
    assert f"[{100 * ci['low']:.2f}, {100 * ci['high']:.2f}]" in row
    assert "is not the stored score" not in md
    paired_row = next(line for line in md.split("## Paired tests")[1].splitlines()
                      if line.startswith("| VFS (Dice) | swav |"))  # fmt: skip
    assert "paired bootstrap (global Dice)" in paired_row


def test_paired_tests_against_the_baseline(tmp_path):
    from tfmedbench.study import paired

    write_runs(tmp_path)
    out = make_report(tmp_path, formats=())
    md = open(out["report"]).read()
    section = md.split("## Paired tests vs the baseline on the same test images")[1]
    assert "do the two initializations' models differ on these same test images" in section
    assert (
        "DeLong" in section and "Wilcoxon" in section and "averaged over the seed pairs" in section
    )
    swav = next(line for line in section.splitlines() if line.startswith("| TXC (AUC) | swav |"))
    rand = next(line for line in section.splitlines() if line.startswith("| TXC (AUC) | random |"))
    assert swav.rstrip().endswith("▲ |") and rand.rstrip().endswith("▼ |") and "| 3 |" in swav

    def read(w, s, t="TXC"):
        return paired.read_predictions(tmp_path / f"runs/{t}/{w}/seed-{s}/predictions.npz")

    direct = paired.compare_runs({s: read("swav", s) for s in range(3)},
                                 {s: read("imagenet", s) for s in range(3)},
                                 ["tuberculosis"])  # fmt: skip
    rows = list(csv.DictReader(open(tmp_path / "report" / "paired_tests.csv")))
    pooled = next(r for r in rows if r["task"] == "TXC" and r["weights"] == "swav" and r["seed"] == "pooled"
                  and r["quantity"] == "mean")  # fmt: skip
    assert float(pooled["p"]) == pytest.approx(direct["pooled"]["mean"]["p"], rel=1e-9)
    assert float(pooled["diff"]) > 0 and pooled["seed_pairs"] == "3"
    assert (
        sum(1 for r in rows if r["weights"] == "swav" and r["task"] == "TXC") == 4 * 2
    )  # 3 seeds + pooled
    direct_vfs = paired.compare_runs({s: read("swav", s, "VFS") for s in range(3)},
                                           {s: read("imagenet", s, "VFS") for s in range(3)})  # fmt: skip
    vfs = next(line for line in section.splitlines() if line.startswith("| VFS (Dice) | swav |"))
    assert tables.fmt_p(direct_vfs["pooled"]["wilcoxon_p"]) in vfs and "Wilcoxon" in vfs
    assert "(paired t-test in the CSV)" in section


def test_paired_tests_refuse_other_test_sets_and_old_files(tmp_path):
    write_runs(tmp_path, bad="ids")
    md = open(make_report(tmp_path, formats=())["report"]).read()
    note = next(line for line in md.splitlines() if "were tested on different images" in line)
    assert (
        "runs/TXC/random/seed-1/predictions.npz" in note
        and "(1 only in the first, 1 only in the second)" in note
    )
    assert "| TXC (AUC) | swav |" in md.split("## Paired tests")[1]  # the others still run
    other = tmp_path / "old"
    other.mkdir()
    write_runs(other, bad="old")
    md = open(make_report(other, formats=())["report"]).read()
    assert any("no image_id array" in line and "random/seed-2" in line for line in md.splitlines())
    assert (
        "Skipped (`--no-paired`)"
        in open(make_report(other, paired=False, formats=())["report"]).read()
    )


# --------------------------------------------------------------------------- slices, label efficiency
def write_fractions(directory):
    rng = np.random.default_rng(1)
    with ResultsStore(directory) as store:
        for fraction, offset in ((0.01, -8.0), (0.1, -3.0), (1.0, 0.0)):
            for w, gain in (("imagenet", 0.0), ("swav", 1.0)):
                for seed in range(3):
                    rec = dict(task="TXC", weights=w, seed=seed, status="ok", metric="auc",
                               score=(90 + offset + gain * (1 - fraction) + rng.normal(0, 0.3)) / 100,
                               epochs_run=10, best_epoch=4, n_train=round(700 * fraction))  # fmt: skip
                    if fraction != 1.0:  # full-data records written the old way (no new fields)
                        rec.update(
                            protocol="finetune", label_fraction=fraction, label_subset="fixed"
                        )
                    store.append(rec)
        store.append(dict(task="TXC", weights="imagenet", seed=0, status="ok", metric="auc", score=0.7,
                          protocol="linear", label_fraction=1.0, epochs_run=3, best_epoch=3))  # fmt: skip


def test_slices_get_their_own_tables_and_label_efficiency(tmp_path):
    write_fractions(tmp_path)
    out = make_report(tmp_path, formats=("png",))
    study, md = out["study"], open(out["report"]).read()
    assert [s.key for s in study.slices] == [("finetune", 1.0), ("finetune", 0.1), ("finetune", 0.01),
                                             ("linear", 1.0)]  # fmt: skip
    assert out["results"].key == ("finetune", 1.0) and out["results"].row("TXC", "swav")["n"] == 3
    for title in (
        "## Fine-tuning, 100% of the training labels",
        "## Linear probe, 100% of the training labels",
        "## Fine-tuning, 10% of the training labels",
        "## Fine-tuning, 1% of the training labels",
    ):
        assert title in md
    tenth = study.slices[1]
    assert tenth.row("TXC", "imagenet")["n"] == 3 and len(tenth.ok) == 6  # same seeds, not merged
    names = {os.path.basename(p) for p in out["figures"]}
    assert {"scores_TXC.png", "scores_TXC_finetune_0.1.png", "scores_TXC_linear_1.png"} <= names
    assert md.count("### The paper beside the measured numbers") == 1  # default slice only
    # label efficiency: table, figure, CSV; label_subset stated
    section = md.split("## Label efficiency")[1].split("## Figures")[0]
    assert "### TXC, finetune" in section and "label_subset: fixed" in section
    assert "- Label subsets of the runs with a fraction of the labels: fixed" in md
    assert (
        "1% (n_train 7)" in section
        and "10% (n_train 70)" in section
        and "100% (n_train 700)" in section
    )
    sel = study.frame
    vals = (
        sel[
            (sel.weights == "swav") & (sel.label_fraction == 0.1) & (sel.protocol == "finetune")
        ].score
        * 100
    )
    s = stats.summarize(vals)
    row = next(line for line in section.splitlines() if line.startswith("| swav |"))
    assert f"{s['mean']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}] (3)" in row
    from PIL import Image

    with Image.open(tmp_path / "report" / "label_efficiency_TXC_finetune.png") as im:
        assert im.size[0] > 800 and im.size[1] > 500
    rows = list(csv.DictReader(open(tmp_path / "report" / "label_efficiency.csv")))
    assert len(rows) == 6 and {r["label_subset"] for r in rows} == {"fixed"}
    assert "label_efficiency_TXC_linear" not in " ".join(out["figures"])  # one fraction only


def test_bad_label_fraction_is_one_line(tmp_path):
    rec = dict(task="TXC", weights="a", seed=0, status="ok", score=0.9, label_fraction="half")
    (tmp_path / "results.jsonl").write_text(json.dumps(rec) + "\n")  # an edited store
    with pytest.raises(UserError, match=r"label_fraction 'half'; expected a number in \(0, 1\]"):
        make_report(tmp_path)


def test_report_cli_styles(tmp_path):
    study = tmp_path
    write_store(study, {k: v for k, v in scores().items() if k[0] == "TXC" and k[1] in ("imagenet", "swav")},
                failed=False, with_sweep_json=False)  # fmt: skip  (one task: few figures to draw)
    runner = CliRunner()
    result = runner.invoke(
        report_cmd, [str(study), "--style", "tfmedbench", "--no-paper", "--format", "png"]
    )
    assert result.exit_code == 0, result.output
    assert "style tfmedbench (welch, correction holm, ddof 1)" in result.output
    assert "The paper beside" not in open(study / "report" / "report.md").read()
    ref = study / "ref.csv"
    ref.write_text("weights,task,mean\nimagenet,TXC,96\n")
    result = runner.invoke(report_cmd, [str(study), "--paper", str(ref), "--no-paper"])
    assert isinstance(result.exception, UserError)
