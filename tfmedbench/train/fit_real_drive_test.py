"""VFS on the real, complete DRIVE set (../shared/data/DRIVE): build, fine-tune, Dice."""

import json

import numpy as np

from tfmedbench.data import prepare
from tfmedbench.train import fit


def test_fit_vfs_on_real_drive_reduced_resolution(shared_data, tmp_path):
    data_dir = str(tmp_path / "tfds")
    builder = prepare.build("tfmedbench_drive", str(shared_data), data_dir, verbose=False)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    assert splits == {"train": 16, "validation": 4, "test": 20}
    result = fit("VFS", data_dir=data_dir, output_dir=str(tmp_path / "run"), seed=0,
                 # expansion 4 of SA-UNet's 13 (the full expansion runs on fixture data in
                 # fit_all_tasks_test): the real images' augmentation is this test's cost
                 overrides=dict(epochs=2, image_size=128, batch_size=4, depths=(1, 1, 1, 1),
                                width=8, lr=1e-2, expansion=4),
                 verbose=0)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["status"] == "ok" and m["epochs_run"] == 2 and m["extra"]["n_test"] == 20
    stats = np.load(result.run_dir / "predictions.npz")["dice_stats"]
    assert stats.shape == (20, 3)
    # Every real test image has vessels (DRIVE 1st_manual): ~6-12% of 128x128 pixels.
    frac = stats[:, 2] / (128 * 128)
    assert (frac > 0.03).all() and (frac < 0.2).all()
    assert 0.0 <= m["score"] <= 1.0 and 0.0 <= m["extra"]["dice_global"] <= 1.0
