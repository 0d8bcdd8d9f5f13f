"""The `tfmedbench` command line: help, errors as one line with a non-zero exit, data and fit."""

import importlib.metadata
import os
import subprocess
import sys

from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
from tfmedbench.testing import run_cli


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("tfmedbench") == "tfmedbench.cli:main"


def test_help_lists_every_command(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for name in ("fit", "demo", "data", "tasks", "weights", "convert", "benchmark", "report",
                 "pretrain", "export"):
        assert name in out


def test_tasks_lists_the_seven(capsys):
    code, out, _ = run_cli(["tasks"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 7
    code, out, _ = run_cli(["tasks", "vfs"], capsys)
    assert '"image_size": 512' in out


def test_unknown_task_is_one_line_exit_2(capsys):
    code, out, err = run_cli(["fit", "--task", "nope"], capsys)
    assert code == 2
    assert err.strip() == "error: unknown task 'nope'; choose one of ECC, DXC14, DXC5, TXC, LXS, VFS, PXS"
    assert "Traceback" not in err


def test_unknown_weights_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(["fit", "--task", "TXC", "--weights", "no-such-init",
                            "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "no-such-init" in err and len(err.strip().splitlines()) == 1


def test_missing_dataset_says_how_to_build(capsys, tmp_path):
    code, _, err = run_cli(["fit", "--task", "txc", "--data-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "tfmedbench_nih_shenzhen is not built" in err
    assert f"tfmedbench data build TXC --manual-dir DIR --data-dir {tmp_path}" in err


def test_data_build_from_empty_dir_names_builder_and_tree(capsys, tmp_path):
    (tmp_path / "raw").mkdir()
    code, _, err = run_cli(["data", "build", "TXC", "--manual-dir", str(tmp_path / "raw"),
                            "--data-dir", str(tmp_path / "tfds")], capsys)
    assert code != 0 and "tfmedbench_nih_shenzhen" in err and "CXR_png" in err
    assert not (tmp_path / "tfds" / "tfmedbench_nih_shenzhen" / "1.0.0").exists()


def test_bad_set_override(capsys, tmp_path):
    code, _, err = run_cli(["fit", "--task", "TXC", "--set", "epoch=3"], capsys)
    assert code == 2 and "unknown recipe field(s) ['epoch']" in err


def test_data_list_and_build_and_fit(capsys, tmp_path):
    write_shenzhen_tree(str(tmp_path / "raw"), n_images=30, size=48)
    tfds_dir = str(tmp_path / "tfds")
    code, out, _ = run_cli(["data", "list", "--data-dir", tfds_dir], capsys)
    assert code == 0 and out.count("not built") == 7
    code, out, err = run_cli(["data", "build", "TXC", "--manual-dir", str(tmp_path / "raw"),
                              "--data-dir", tfds_dir], capsys)
    assert code == 0, err
    assert "tfmedbench_nih_shenzhen train: 20 examples" in out
    code, out, _ = run_cli(["data", "list", "--data-dir", tfds_dir], capsys)
    assert "tfmedbench_nih_shenzhen" in out and out.count("not built") == 6
    code, out, err = run_cli(
        ["fit", "--task", "TXC", "--data-dir", tfds_dir, "--epochs", "1", "--batch-size", "4",
         "--image-size", "32", "--set", "depths=1,1,1,1", "--set", "width=8",
         "--set", "resize_size=36", "--output", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert "test auc = " in out and f"run directory: {tmp_path / 'run'}" in out
    assert "precision=float32 jit_compile=False" in err  # the settings line printed at start


def test_demo_runs_full_resnet50_and_prints_auc(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "tfmedbench.cli", "demo", "--workdir", str(tmp_path),
         "--images", "40", "--epochs", "1", "--image-size", "64"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "demo: test AUC = " in proc.stdout
    auc = float(proc.stdout.split("demo: test AUC = ")[1].split()[0])
    assert 0.0 <= auc <= 1.0
    assert (tmp_path / "raw" / "ChinaSet_AllFiles" / "CXR_png" / "CHNCXR_0001_0.png").exists()
    assert (tmp_path / "run" / "metrics.json").exists()


BAD_OPTIONS = [
    (["--epochs", "0"], "'epochs' = 0 must be an integer >= 1"),
    (["--epochs", "-1"], "'epochs' = -1"),
    (["--batch-size", "0"], "'batch_size' = 0"),
    (["--batch-size", "-2"], "'batch_size' = -2"),
    (["--image-size", "-64"], "'image_size' = -64"),
    (["--image-size", "0"], "'image_size' = 0"),
    (["--lr", "-0.1"], "'lr' = -0.1"),
    (["--patience", "-1"], "'patience' = -1"),
    (["--set", "lr=nan"], "'lr' = nan"),
    (["--label-fraction", "0"], "--label-fraction must be in (0, 1]"),
    (["--seed", "-3"], "--seed must be an integer >= 0"),
    (["--data-config", "nope"], "--data-config 'nope'"),
]


def test_bad_options_are_refused_before_anything_is_written(capsys, tmp_path):
    for extra, message in BAD_OPTIONS:
        out = tmp_path / "run"
        code, _, err = run_cli(["fit", "--task", "TXC", "--data-dir", str(tmp_path / "d"),
                                "--output", str(out), *extra], capsys)  # fmt: skip
        assert code == 2, (extra, err)
        assert message in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert not out.exists(), extra  # no config.json, no folder


def test_run_folders_are_never_mixed_and_follow_the_umask(capsys, tmp_path):
    write_shenzhen_tree(tmp_path / "raw", n_images=24, size=48, seed=0)
    args = ["fit", "--task", "TXC", "--data-dir", str(tmp_path / "tfds"), "--manual-dir",
            str(tmp_path / "raw"), "--epochs", "1", "--image-size", "32", "--batch-size", "8",
            "--set", "depths=1,1,1,1", "--set", "width=8", "--set", "test_time=resize", "-q"]
    out = tmp_path / "run"
    old = os.umask(0o027)
    try:
        code, _, err = run_cli([*args, "--output", str(out), "--save-weights", "backbone"], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    files = sorted(os.listdir(out))
    assert "backbone.weights.h5" in files and "best.weights.h5" not in files
    assert "checkpoint" not in files  # removed once the run finished
    for name in ("config.json", "history.csv", "metrics.json", "predictions.npz"):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name  # 0666 & ~0027
    # a second fit into the same folder is refused; --overwrite replaces it
    code, _, err = run_cli([*args, "--output", str(out)], capsys)
    assert code == 2 and "already holds a run" in err and "--overwrite" in err
    code, _, err = run_cli([*args, "--output", str(out), "--overwrite", "--save-weights", "none"],
                           capsys)  # fmt: skip
    assert code == 0, err
    assert not any(f.endswith(".weights.h5") for f in os.listdir(out))
    # nothing left to resume in a finished run
    code, _, err = run_cli([*args, "--output", str(out), "--resume"], capsys)
    assert code == 2 and "finished run" in err
