"""Predictions keyed by image id, scored inside/outside DRIVE's FOV, and `tfmedbench rescore`."""

import json

import numpy as np
import pytest

from tfmedbench import metrics
from tfmedbench.errors import UserError


@pytest.fixture(scope="module")
def vfs_run(tmp_path_factory):
    from datasets_tfds.drive.fake_data import write_tree
    from tfmedbench.train import fit

    root = tmp_path_factory.mktemp("vfs")
    write_tree(root / "raw", n_train=6, n_test=3, seed=0)
    result = fit("VFS", data_dir=str(root / "tfds"), manual_dir=str(root / "raw"),
                 output_dir=str(root / "run"), verbose=0,
                 overrides=dict(epochs=1, image_size=64, batch_size=4, depths=(1, 1, 1, 1),
                                width=8, augmentation="none", expansion=1))  # fmt: skip
    return result


def test_predictions_are_keyed_by_image_id_with_fov_sums(vfs_run):
    p = np.load(vfs_run.run_dir / "predictions.npz")
    assert sorted(p["image_id"]) == ["01_test", "02_test", "03_test"]
    whole, fov = p["dice_stats"], p["dice_stats_fov"]
    assert whole.shape == fov.shape == (3, 3)
    assert np.all(fov <= whole)  # sums inside the FOV never exceed the image's
    m = vfs_run.metrics
    assert m["extra"]["dice_score"] == "global" and m["extra"]["score_region"] == "image"
    assert m["score"] == pytest.approx(metrics.dice_from_stats(whole)[1])
    assert m["extra"]["dice_global_fov"] == pytest.approx(metrics.dice_from_stats(fov)[1])
    assert m["ci"]["level"] == 0.95


def test_rescore_switches_region_and_aggregate_without_training(vfs_run, capsys):
    from tfmedbench.cli import main

    run_dir = vfs_run.run_dir
    main(["rescore", str(run_dir), "--set", "score_region=fov", "--set", "dice_score=per-image"])
    m = json.loads((run_dir / "metrics.json").read_text())
    fov = np.load(run_dir / "predictions.npz")["dice_stats_fov"]
    assert m["score"] == pytest.approx(metrics.dice_from_stats(fov)[0])
    assert m["recipe"]["score_region"] == "fov" and m["rescored_from"]["score"] == vfs_run.metrics["score"]
    assert "was" in capsys.readouterr().out
    from tfmedbench.train.rescore import rescore

    with pytest.raises(UserError, match="changes only"):
        rescore(run_dir, {"lr": "0.1"})
