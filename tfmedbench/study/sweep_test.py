"""The benchmark sweep: results store, resume, failures, config checks, and a real SIGKILL test."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tfmedbench.study import config as config_lib
from tfmedbench.study import progress as progress_lib
from tfmedbench.study import sweep
from tfmedbench.errors import UserError
from tfmedbench.study.store import ResultsStore, read_records, record_key

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------- stand-in run
class FakeResult:
    def __init__(self, run_dir, metrics):
        self.run_dir, self.metrics = run_dir, metrics


class FakeRun:
    """Deterministic stand-in for `train.fit.run` (no TensorFlow): score from the spec, so the
    store's bookkeeping is tested in milliseconds; the end-to-end tests below train for real."""

    def __init__(self, fail=(), interrupt_at=None):
        self.calls, self.specs, self.fail, self.interrupt_at = [], [], set(fail), interrupt_at

    def __call__(self, spec):
        task, weights, seed, output_dir = spec.task, spec.weights, spec.seed, spec.output_dir
        self.calls.append((task, weights, seed))
        self.specs.append(spec)
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        os.makedirs(output_dir, exist_ok=True)
        open(os.path.join(output_dir, "metrics.json"), "w").write("{}")
        if (task, seed) in self.fail:
            raise FloatingPointError("non-finite training loss (nan) in epoch 3")
        score = 0.5 + (hash((task, os.path.basename(str(weights)))) % 1000) / 4000 + seed / 100
        return FakeResult(
            output_dir,
            {"task": task, "weights": weights, "seed": seed, "metric": "auc", "score": score,
             "per_class": {"x": score}, "epochs_run": 3 + seed, "best_epoch": 2,
             "status": "ok", "versions": {"tensorflow": "x"}, "epochs": spec.recipe.epochs},
        )  # fmt: skip




def make_config(**kw):
    base = dict(tasks=("TXC", "VFS"), weights=(("random", "random"), ("a", "/x/a.weights.h5")),
                runs=3, overrides={"epochs": 1}, verbose=0)  # fmt: skip
    base.update(kw)
    return config_lib.SweepConfig(**base)


def run(config, out, fit, **kw):
    return sweep.run_sweep(config, out, run_fn=fit, check_data=False, stream=open(os.devnull, "w"), **kw)


# --------------------------------------------------------------------------- unit tests
def test_seeds_are_derived_from_the_run_index():
    cells = make_config().cells()
    assert len(cells) == 2 * 2 * 3
    assert {c["seed"] for c in cells if c["run"] == 2} == {2}
    assert [c["seed"] for c in make_config(base_seed=10).cells()][:4] == [10, 10, 10, 10]
    assert config_lib.derive_seed(4, 100) == 104
    # run-major order: every (task, weights) gets its first run before any second run
    assert [c["run"] for c in cells[:4]] == [0, 0, 0, 0]


def test_sweep_runs_all_then_resumes_without_rerunning(tmp_path):
    fit = FakeRun()
    summary = run(make_config(), tmp_path, fit)
    assert summary == dict(total=12, skipped=0, ran=12, ok=12, failed=0)
    again = FakeRun()
    summary = run(make_config(), tmp_path, again)
    assert again.calls == [] and summary["skipped"] == 12
    recs = read_records(tmp_path / "results.jsonl")
    assert len(recs) == 12 and len({record_key(r) for r in recs}) == 12
    rec = recs[0]
    assert rec["status"] == "ok" and rec["run_dir"] == os.path.join("runs", "TXC", "random", "seed-0")
    assert rec["weights"] == "random" and rec["score"] > 0
    # growing the grid runs only the new cells
    more = FakeRun()
    summary = run(make_config(runs=4), tmp_path, more)
    assert summary["ran"] == 4 and {c[2] for c in more.calls} == {3}


def test_interrupted_sweep_resumes_at_the_interrupted_cell(tmp_path):
    fit = FakeRun(interrupt_at=5)
    with pytest.raises(KeyboardInterrupt):
        run(make_config(), tmp_path, fit)
    assert len(read_records(tmp_path / "results.jsonl")) == 4
    # the interrupted cell left a run dir but no record: it is deleted and run again
    cell5 = fit.calls[4]
    resumed = FakeRun()
    run(make_config(), tmp_path, resumed)
    assert resumed.calls[0] == cell5 and len(resumed.calls) == 8
    reference = FakeRun()
    run(make_config(), tmp_path / "ref", reference)
    got = {record_key(r): r["score"] for r in read_records(tmp_path / "results.jsonl")}
    ref = {record_key(r): r["score"] for r in read_records(tmp_path / "ref" / "results.jsonl")}
    assert got == ref and len(read_records(tmp_path / "results.jsonl")) == 12


def test_failed_run_is_recorded_and_the_sweep_continues(tmp_path):
    fit = FakeRun(fail={("VFS", 1)})
    summary = run(make_config(), tmp_path, fit)
    assert summary["failed"] == 2 and summary["ok"] == 10 and len(fit.calls) == 12
    failed = [r for r in read_records(tmp_path / "results.jsonl") if r["status"] == "failed"]
    assert {(r["task"], r["seed"]) for r in failed} == {("VFS", 1)}
    assert failed[0]["error_type"] == "FloatingPointError" and "nan" in failed[0]["error"]
    assert "Traceback" in failed[0]["traceback"]
    # default: a failed cell is finished (not re-run); --retry-failed runs it again
    again = FakeRun()
    assert run(make_config(), tmp_path, again)["ran"] == 0
    retry = FakeRun()
    summary = run(make_config(retry_failed=True), tmp_path, retry)
    assert summary["ran"] == 2 and summary["ok"] == 2
    resolved = ResultsStore(tmp_path).resolved()
    assert all(r["status"] == "ok" for r in resolved.values()) and len(resolved) == 12
    assert resolved[("VFS", "a", 1, "finetune", 1.0)]["attempts"] == 2


def test_no_score_is_a_failure(tmp_path):
    def nan_fit(spec):
        return FakeResult(spec.output_dir, {"metric": "auc", "score": float("nan")})

    run(make_config(runs=1, tasks=("TXC",)), tmp_path, nan_fit)
    recs = read_records(tmp_path / "results.jsonl")
    assert {r["status"] for r in recs} == {"failed"} and recs[0]["error_type"] == "NoScore"


def test_store_torn_tail_is_ignored_and_repaired(tmp_path):
    with ResultsStore(tmp_path) as store:
        store.append(dict(task="TXC", weights="a", seed=0, status="ok", score=0.9))
    with open(tmp_path / "results.jsonl", "a") as fh:
        fh.write('{"task": "TXC", "weights": "a", "seed": 1, "sta')  # killed mid-write
    assert len(read_records(tmp_path / "results.jsonl")) == 1
    with ResultsStore(tmp_path) as store:
        store.append(dict(task="TXC", weights="a", seed=1, status="ok", score=0.8))
    recs = read_records(tmp_path / "results.jsonl")
    assert [r["seed"] for r in recs] == [0, 1]
    assert (tmp_path / "results.jsonl").read_text().count("\n") == 2


def test_store_refuses_duplicates_and_concurrent_writers(tmp_path):
    with ResultsStore(tmp_path) as store:
        store.append(dict(task="TXC", weights="a", seed=0, status="ok", score=0.9))
        with pytest.raises(ValueError, match="already holds"):
            store.append(dict(task="TXC", weights="a", seed=0, status="ok", score=0.9))
        with pytest.raises(UserError, match="another process"):
            ResultsStore(tmp_path).open()
    # a corrupted middle line is an error, not silently skipped
    path = tmp_path / "results.jsonl"
    path.write_text('{"task": "TXC", "weights": "a", "seed": 0}\nnot json\n{"task": "X", "weights": "a", "seed": 0}\n')
    with pytest.raises(UserError, match=":2 is not valid JSON"):
        read_records(path)


def test_changed_settings_are_refused(tmp_path):
    run(make_config(runs=1), tmp_path, FakeRun())
    with pytest.raises(UserError, match="different settings.*overrides"):
        run(make_config(runs=1, overrides={"epochs": 2}), tmp_path, FakeRun())
    with pytest.raises(UserError, match="weights 'a'"):
        run(make_config(runs=1, weights=(("a", "/y/other.weights.h5"),)), tmp_path, FakeRun())
    # the same setting written differently ("1" vs 1) is the same sweep
    assert run(make_config(runs=1, overrides={"epochs": "1"}), tmp_path, FakeRun())["ran"] == 0


def test_config_parsing(tmp_path):
    w = tmp_path / "tiny_a.weights.h5"
    w.write_bytes(b"")
    parsed = config_lib.parse_weights(["random,imagenet", f"mine={w}", str(w)])
    assert parsed == (("random", "random"), ("imagenet", "imagenet"), ("mine", str(w)),
                      ("tiny_a", str(w)))  # fmt: skip
    (tmp_path / "tiny_a.weights.h5.json").write_text(json.dumps({"name": "swav_converted"}))
    assert config_lib.weights_label(str(w)) == "swav_converted"  # the sidecar's name wins
    assert config_lib.parse_manual_dirs(["TXC=/raw/s", "/raw/all"]) == {"TXC": "/raw/s", "*": "/raw/all"}
    cfg = config_lib.config_from_mapping(
        {"tasks": "txc,vfs", "weights": {"r": "random"}, "runs": 2,
         "set": {"depths": "1,1,1,1"}, "task_overrides": {"vfs": {"epochs": 3}}},
        runs=5, overrides={"width": "8"},
    )  # fmt: skip
    assert cfg.tasks == ("TXC", "VFS") and cfg.runs == 5 and cfg.baseline == "r"
    assert cfg.overrides == {"depths": [1, 1, 1, 1], "width": 8}
    assert cfg.overrides_for("VFS")["epochs"] == 3 and "epochs" not in cfg.overrides_for("TXC")
    with pytest.raises(UserError, match="unknown recipe field 'epoch'"):
        make_config(overrides={"epoch": 1})
    with pytest.raises(UserError, match="given twice"):
        make_config(weights=(("a", "random"), ("a", "imagenet")))
    with pytest.raises(UserError, match="unknown key"):
        config_lib.config_from_mapping({"tasks": "TXC", "weights": "random", "runs": 1, "run": 2})


def test_progress_line_and_eta():
    p = progress_lib.Progress(total=10, done=4, stream=open(os.devnull, "w"))
    assert "4/10 cells (40%)" in p.line(["TXC"] * 6) and "ETA --:--" in p.line([])
    p.finished("TXC", 10.0, ok=True)
    p.finished("VFS", 30.0, ok=False)
    line = p.line(["TXC", "VFS", "VFS"], current="VFS x a x seed 1")
    assert "6/10" in line and "1 failed" in line and "ETA 1:10" in line  # 10 + 30 + 30 s


# --------------------------------------------------------------------------- end to end
# expansion 1: the DRIVE expansion is the fit tests' business; here the store is
TINY_SETS = ["--set", "depths=1,1,1,1", "--set", "width=8", "--set", "test_time=resize",
             "--set", "expansion=1"]


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    """Tiny Shenzhen and DRIVE raw trees and one tiny backbone weights file."""
    import keras

    from tfmedbench.models import resnet50
    from datasets_tfds.drive.fake_data import write_tree as write_drive_tree
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree

    root = tmp_path_factory.mktemp("sweep_data")
    write_shenzhen_tree(root / "raw_txc", n_images=40, size=64, seed=0)
    write_drive_tree(root / "raw_vfs", n_train=8, n_test=4, seed=0)
    keras.utils.set_random_seed(100)
    weights = {"tiny_a": root / "tiny_a.weights.h5"}
    resnet50(include_top=False, depths=(1, 1, 1, 1), width=8).save_weights(weights["tiny_a"])
    return root, weights


def benchmark_cmd(root, weights, out):
    return [
        sys.executable, "-m", "tfmedbench.cli", "benchmark",
        "--tasks", "TXC,VFS",
        "--weights", f"random,a={weights['tiny_a']}",
        "--runs", "2", "--baseline", "a", "--output", str(out),
        "--manual-dir", f"TXC={root / 'raw_txc'}", "--manual-dir", f"VFS={root / 'raw_vfs'}",
        "--data-dir", str(root / "tfds"),
        "--epochs", "1", "--image-size", "32", "--batch-size", "4", "-q", *TINY_SETS,
    ]  # fmt: skip


def env():
    e = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", TF_CPP_MIN_LOG_LEVEL="2")
    e["PYTHONPATH"] = REPO + os.pathsep + e.get("PYTHONPATH", "")
    return e


def scores_of(path):
    return {
        record_key(r): (r["status"], r.get("score"), json.dumps(r.get("per_class"), sort_keys=True))
        for r in read_records(path)
    }


@pytest.fixture(scope="module")
def reference_sweep(fixture_data):
    """An uninterrupted 2 tasks x 2 initializations x 2 runs sweep through the CLI."""
    root, weights = fixture_data
    out = root / "reference"
    proc = subprocess.run(benchmark_cmd(root, weights, out), env=env(), cwd=REPO,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_reference_sweep_completes_with_progress(reference_sweep):
    out, proc = reference_sweep
    recs = read_records(out / "results.jsonl")
    assert len(recs) == 8 and {r["status"] for r in recs} == {"ok"}
    assert len({record_key(r) for r in recs}) == 8
    assert {(r["task"], r["weights"]) for r in recs} == {
        (t, w) for t in ("TXC", "VFS") for w in ("random", "a")
    }
    assert {r["seed"] for r in recs} == {0, 1}
    assert {r["metric"] for r in recs if r["task"] == "VFS"} == {"dice"}
    # a study keeps metrics and predictions, not weights (--save-weights none by default)
    assert all(os.path.exists(out / r["run_dir"] / "predictions.npz") for r in recs)
    assert not any(os.path.exists(out / r["run_dir"] / "backbone.weights.h5") for r in recs)
    assert all(len(r["weights_sha256"]) == 64 for r in recs if r["weights"] != "random")
    assert "[benchmark] [" in proc.stderr and "8/8 cells (100%)" in proc.stderr
    assert "ETA" in proc.stderr and "8 run(s) finished, 0 failed" in proc.stdout
    # different initializations give different results (the weights were really used; after
    # one epoch the tiny U-Nets' global Dice can be 0 for both, their AUCs differ)
    txc = {r["weights"]: r["score"] for r in recs if r["task"] == "TXC" and r["seed"] == 0}
    assert len(set(txc.values())) == 2


def test_sigkill_at_a_random_point_then_rerun_gives_identical_results(fixture_data, reference_sweep):
    root, weights = fixture_data
    ref_out, _ = reference_sweep
    out = root / "killed"
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    after = rng.randint(1, 6)  # kill once this many records exist, plus a random delay
    delay = rng.uniform(0.0, 6.0)
    print(f"kill schedule seed={seed}: after {after} records + {delay:.2f}s")
    cmd = benchmark_cmd(root, weights, out)
    proc = subprocess.Popen(cmd, env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    store = out / "results.jsonl"
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists() and len(read_records(store)) >= after:
                break
            time.sleep(0.1)
        time.sleep(delay)
        assert proc.poll() is None, "the sweep finished before the kill; schedule too late"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    at_kill = read_records(store)
    assert after <= len(at_kill) < 8
    assert len({record_key(r) for r in at_kill}) == len(at_kill)

    rerun = subprocess.run(cmd, env=env(), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(at_kill)} already in the store" in rerun.stdout
    assert f"{8 - len(at_kill)} run(s) finished" in rerun.stdout
    final = read_records(store)
    assert len(final) == 8  # no duplicates, nothing half-finished, nothing missing
    assert final[: len(at_kill)] == at_kill  # records are only ever appended
    assert scores_of(store) == scores_of(ref_out / "results.jsonl")
    # a further rerun does nothing
    third = subprocess.run(cmd, env=env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "0 run(s) finished" in third.stdout
    assert len(read_records(store)) == 8


def test_report_of_the_fixture_sweep(reference_sweep, tmp_path):
    out, _ = reference_sweep
    proc = subprocess.run(
        [sys.executable, "-m", "tfmedbench.cli", "report", str(out), "--output", str(tmp_path)],
        env=env(), cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "report.md").read_text()
    # the paper's statistics by default: Student's t-test vs the baseline, no correction
    assert "n = 2 runs per cell" in md and "vs **a**" in md and "Statistics style **paper**" in md
    assert "| TXC (AUC) | VFS (Dice) |" in md
    for name in ("scores_TXC", "scores_VFS", "scores_all", "heatmap_diff"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (tmp_path / f"{name}.svg").read_bytes()[:2000]
    # keep a copy for a human look (the test log prints where)
    print(f"report written to {tmp_path}")


def test_benchmark_cli_reads_yaml_config_and_cli_wins(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tfmedbench.cli.study import benchmark

    seen = {}

    def fake_run_sweep(config, output, stop_after=None):
        seen.update(config=config, output=output, stop_after=stop_after)
        return dict(total=4, skipped=1, ran=3, ok=2, failed=1)

    monkeypatch.setattr(sweep, "run_sweep", fake_run_sweep)
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(
        "tasks: [TXC, VFS]\nweights: {imagenet: imagenet, mine: /w/m.weights.h5}\nruns: 10\n"
        f"output: {tmp_path / 'out'}\nmanual_dir: {{TXC: /raw/s}}\nset: {{epochs: 3}}\n"
    )
    result = CliRunner().invoke(
        benchmark, ["--config", str(cfg), "--runs", "2", "--epochs", "5", "--max-cells", "3",
                    "--manual-dir", "VFS=/raw/d", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    c = seen["config"]
    assert c.tasks == ("TXC", "VFS") and c.runs == 2 and c.overrides == {"epochs": 5}
    assert c.weights == (("imagenet", "imagenet"), ("mine", "/w/m.weights.h5"))
    assert c.manual_dir == {"TXC": "/raw/s", "VFS": "/raw/d"} and c.verbose == 0
    assert c.baseline == "imagenet" and seen["stop_after"] == 3
    assert seen["output"] == str(tmp_path / "out")
    assert "2 run(s) finished, 1 failed, 1 already in the store, 4 cells in all" in result.output
    result = CliRunner().invoke(benchmark, ["--tasks", "TXC", "--weights", "random", "--runs", "1"])
    assert isinstance(result.exception, UserError) and "--output" in str(result.exception)
