"""`tfmedbench export`: SavedModel and ONNX of fine-tuned runs, checked against Keras."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

from tfmedbench.errors import UserError
from tfmedbench.study.export import export_run, model_card_path, random_inputs

TINY = {"depths": (1, 1, 1, 1), "width": 8, "epochs": 1, "batch_size": 4, "test_time": "resize"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny fine-tuned classifier (TXC) and one tiny U-Net (VFS) run directory."""
    from datasets_tfds.drive.fake_data import write_tree as write_drive_tree
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.train import fit

    root = tmp_path_factory.mktemp("export")
    write_shenzhen_tree(root / "raw_txc", n_images=24, size=64, seed=0)
    write_drive_tree(root / "raw_vfs", n_train=8, n_test=4, seed=0)
    out = {}
    for task, raw in (("TXC", "raw_txc"), ("VFS", "raw_vfs")):
        out[task] = fit(
            task, "random", data_dir=str(root / "tfds"), manual_dir=str(root / raw),
            output_dir=str(root / f"run_{task}"), seed=0,
            overrides={**TINY, "image_size": 32 if task == "TXC" else 64}, verbose=0,
            save_weights="best",
        ).run_dir  # fmt: skip
    return out


@pytest.mark.parametrize("task", ["TXC", "VFS"])
def test_onnx_export_matches_keras(runs, task, tmp_path):
    import onnxruntime as ort

    from tfmedbench.train import load_run_model

    out = export_run(runs[task], "onnx", tmp_path / "m.onnx", verbose=False)
    assert out["path"].endswith("m.onnx") and os.path.getsize(out["path"]) > 1000
    assert out["check"]["passed"] and out["check"]["max_abs_diff"] <= 1e-4
    # independent re-check on other random inputs
    model, recipe = load_run_model(runs[task])
    x = random_inputs(recipe, n=3, seed=7)
    sess = ort.InferenceSession(out["path"], providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    want = np.asarray(model(x, training=False))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    if task == "VFS":
        assert got.shape == (3, 64, 64, 1)
    card = open(out["model_card"]).read()
    assert out["model_card"] == model_card_path(out["path"])
    assert "Not for clinical use" in card and f"Task: {task}" in card
    assert "ImageNet mean" in card and "Initialization (pre-trained weights): `random`" in card
    assert "max |export - Keras|" in card and ("AUC" in card if task == "TXC" else "DICE" in card)


def test_saved_model_export_matches_keras(runs, tmp_path):
    import tensorflow as tf

    from tfmedbench.train import load_run_model

    out = export_run(runs["TXC"], "saved_model", tmp_path / "sm", verbose=False)
    assert os.path.exists(tmp_path / "sm" / "saved_model.pb")
    assert out["check"]["max_abs_diff"] <= 1e-4
    assert os.path.exists(tmp_path / "sm.model_card.md")
    model, recipe = load_run_model(runs["TXC"])
    x = random_inputs(recipe, n=2, seed=3)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))  # keep a reference while serving
    got = loaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, np.asarray(model(x, training=False)), atol=1e-4, rtol=0)


def test_export_refuses_what_it_cannot_verify(runs, tmp_path, monkeypatch):
    from tfmedbench.study import export as export_mod

    # a corrupted runtime output must fail the check, not pass silently
    real = export_mod._run_onnx
    monkeypatch.setattr(export_mod, "_run_onnx", lambda p, x: real(p, x) + 1e-3)
    with pytest.raises(UserError, match="differ from Keras by up to"):
        export_run(runs["TXC"], "onnx", tmp_path / "sub" / "bad.onnx", verbose=False)
    assert not (tmp_path / "sub").exists()  # nothing half-written is left behind
    with pytest.raises(UserError, match="has no config.json"):
        export_run(tmp_path, "onnx")
    # an interrupted run (no metrics.json, or not "ok") is refused
    import shutil

    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs["TXC"], unfinished)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(UserError, match="not a finished run"):
        export_run(unfinished, "onnx")
    assert not (unfinished / "export").exists()
    with pytest.raises(UserError, match="--format"):
        export_run(runs["TXC"], "tflite")


def test_export_cli(runs, tmp_path):
    from tfmedbench.cli.study import export

    result = CliRunner().invoke(
        export, [str(runs["TXC"]), "--format", "onnx", "--output", str(tmp_path / "c.onnx")]
    )
    assert result.exit_code == 0, result.output
    assert "verified with onnxruntime" in result.output and "model card:" in result.output
