"""Export a fine-tuned run (classifier or U-Net) for deployment, verified, with a model card.

    tfmedbench export RUN_DIR --format saved_model|onnx [--output PATH]

SavedModel: Keras' `model.export(format="tf_saved_model")` (endpoint `serve`), reloaded with
`tf.saved_model.load` and compared with the Keras model. ONNX: Keras' own ONNX export
(`model.export(format="onnx")`, which traces a concrete function and converts it with
tf2onnx's function path; tf2onnx's Keras-model path does not work with Keras 3), run with
onnxruntime and compared with the Keras model. Both must match within `atol` (default 1e-4) on
random inputs, or the export fails and says by how much. A model card (`<artifact>.model_card.md`) is
written beside the exported artifact.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil

import numpy as np

from tfmedbench.errors import UserError
from tfmedbench.fileutil import atomic_write_text

FORMATS = ("saved_model", "onnx")
DEFAULT_ATOL = 1e-4


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def random_inputs(recipe, n=2, seed=0):
    """Inputs in the model's input space: ImageNet-normalised images (about N(0, 1))."""
    rng = np.random.default_rng(seed)
    size = int(recipe.image_size)
    return rng.standard_normal((n, size, size, 3)).astype(np.float32)


def _check_finished(run_dir):
    for name in ("config.json", "best.weights.h5"):
        if not os.path.exists(os.path.join(run_dir, name)):
            raise UserError(
                f"{run_dir} has no {name}: pass a finished run directory written by `tfmedbench "
                "fit` (or a sweep run with --save-weights best)"
            )
    metrics = _read_json(os.path.join(run_dir, "metrics.json")) or {}
    if metrics.get("status") != "ok":
        raise UserError(
            f"{run_dir} is not a finished run (metrics.json {'says ' + repr(metrics.get('status')) if metrics else 'is missing'}): "
            "an interrupted or never-evaluated run is not exported; finish it with `fit --resume`"
        )


def export_run(run_dir, fmt, output=None, atol=DEFAULT_ATOL, n_check=2, seed=0, verbose=True):
    """Export run `run_dir` to `fmt`; verify it; write the model card. Returns a dict.

    Nothing is left behind when it fails: the artifact and any folder created for it go.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run_dir = os.fspath(run_dir)
    _check_finished(run_dir)
    if output is None:
        output = os.path.join(run_dir, "export", "saved_model" if fmt == "saved_model" else "model.onnx")
    output = os.fspath(output)
    if fmt == "onnx" and not output.endswith(".onnx"):
        output = os.path.join(output, "model.onnx")
    parent = os.path.dirname(os.path.abspath(output))
    created = [] if os.path.isdir(parent) else [parent]
    try:
        return _export(run_dir, fmt, output, atol, n_check, seed, verbose)
    except BaseException:
        _remove(output)
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def _export(run_dir, fmt, output, atol, n_check, seed, verbose):
    import keras

    from tfmedbench.train import load_run_model

    keras.mixed_precision.set_global_policy("float32")  # export needs a float32 model
    model, recipe = load_run_model(run_dir)
    _remove(output)
    os.makedirs(os.path.dirname(os.path.abspath(output)) or ".", exist_ok=True)
    x = random_inputs(recipe, n_check, seed)
    expected = np.asarray(model(x, training=False), dtype=np.float32)
    if verbose:
        print(f"[tfmedbench] exporting {fmt} to {output} ...", flush=True)
    if fmt == "saved_model":
        # Keras' verbose export prints every TensorSpec of the signature (~320 lines).
        model.export(output, format="tf_saved_model", verbose=False)
        got = _run_saved_model(output, x)
        runtime = "tensorflow.saved_model.load(...).serve"
    else:
        try:
            model.export(output, format="onnx", verbose=False)
        except ImportError as err:
            raise UserError(
                f"ONNX export needs tf2onnx and onnx ({err}); pip install 'tfmedbench[export]'"
            ) from None
        got = _run_onnx(output, x)
        runtime = "onnxruntime (CPUExecutionProvider)"
    if verbose:
        print(f"[tfmedbench] verifying against Keras with {runtime} ...", flush=True)
    check = _compare(fmt, output, got, expected, atol, n_check, runtime, x)
    card = write_model_card(run_dir, recipe, fmt, output, check)
    return {"path": output, "format": fmt, "check": check, "model_card": card}


def _compare(fmt, output, got, expected, atol, n_check, runtime, x):
    if got.shape != expected.shape:
        raise UserError(f"export check failed: output shape {got.shape} != Keras {expected.shape}")
    max_abs = float(np.max(np.abs(got - expected)))
    if not max_abs <= atol:
        raise UserError(
            f"export check failed: {fmt} outputs differ from Keras by up to {max_abs:.3g} "
            f"(> {atol:g}) on {n_check} random inputs; the artifact was removed"
        )
    return {"runtime": runtime, "n_inputs": n_check, "input_shape": list(x.shape),
            "output_shape": list(expected.shape), "max_abs_diff": max_abs, "atol": atol,
            "passed": True}  # fmt: skip


def _run_saved_model(path, x):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return np.asarray(loaded.serve(tf.constant(x)), dtype=np.float32)


def _run_onnx(path, x):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise UserError(f"verifying the ONNX export needs onnxruntime ({err})") from None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: x})[0], dtype=np.float32)


def model_card_path(artifact):
    """Beside the artifact: saved_model/ -> saved_model.model_card.md, m.onnx -> m.model_card.md."""
    artifact = os.path.abspath(os.fspath(artifact)).rstrip(os.sep)
    stem = artifact[: -len(".onnx")] if artifact.endswith(".onnx") else artifact
    return stem + ".model_card.md"


def _outputs_text(recipe):
    if recipe.kind != "classification":
        return (f"a {recipe.image_size}x{recipe.image_size}x{recipe.num_outputs} sigmoid "
                "probability map per image; threshold 0.5 for a binary mask (as evaluated)")
    text = (f"{recipe.num_outputs} independent sigmoid probabilities, one per label, in this "
            f"order: {', '.join(recipe.labels)}")  # fmt: skip
    if recipe.scored_labels:
        text += f" (scored: {', '.join(recipe.scored_labels)})"
    if recipe.test_time == "tencrop":
        text += (f". The reported score averaged the outputs of a ten-crop ({recipe.resize_size} "
                 f"-> {recipe.image_size}) at test time; the exported model is the single-crop "
                 "network")  # fmt: skip
    return text


def _preprocessing_text(recipe):
    resize = {"torchvision": "bilinear, antialiased (torchvision Resize)",
              "cv2-linear": "bilinear (cv2.resize INTER_LINEAR)",
              "cv2-nearest": "nearest neighbour (cv2.resize INTER_NEAREST)"}[recipe.resize]  # fmt: skip
    norm = ("then normalise with ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, "
            "0.225)" if recipe.normalization == "imagenet" else "no further normalisation")
    return (f"- Preprocessing (not inside the model): scale pixels to [0, 1], resize to "
            f"{recipe.image_size}x{recipe.image_size} ({resize}), {norm}.")  # fmt: skip


def _model_lines(run_dir, recipe, metrics, config):
    weights = metrics.get("weights") or config.get("weights") or "?"
    arch = "ResNet-50 classifier" if recipe.kind == "classification" else "U-Net with a ResNet-50 encoder"
    score = metrics.get("score")
    metric = (metrics.get("metric") or recipe.metric).upper()
    lines = [
        f"# Model card: {recipe.code} fine-tuned from `{weights}`", "",
        "**Not for clinical use.** This model is a research artifact of a transfer-learning "
        "benchmark. It has not been validated for diagnosis, triage or any clinical decision and "
        "must not be used for them.", "",
        "## Model", "",
        f"- Task: {recipe.code} - {recipe.title} ({recipe.kind})",
        f"- Architecture: {arch} (torchvision layout; depths {list(recipe.depths)}, width "
        f"{recipe.width})",
        f"- Initialization (pre-trained weights): `{weights}`",
        f"- Seed: {metrics.get('seed', config.get('seed', '?'))}; epochs run: "
        f"{metrics.get('epochs_run', '?')}, best epoch: {metrics.get('best_epoch', '?')}",
        f"- Source run directory: `{os.path.abspath(run_dir)}`", "",
        "## Evaluation (test split of the run)", "",
        f"- {metric}: {score:.4f}" if isinstance(score, (int, float)) else f"- {metric}: not recorded",
    ]  # fmt: skip
    for label, value in (metrics.get("per_class") or {}).items():
        lines.append(f"  - {label}: {'undefined' if value is None else f'{value:.4f}'}")
    return lines


def write_model_card(run_dir, recipe, fmt, output, check):
    """Write the model card beside the artifact; return its path."""
    import tfmedbench

    metrics = _read_json(os.path.join(run_dir, "metrics.json")) or {}
    config = _read_json(os.path.join(run_dir, "config.json")) or {}
    versions = metrics.get("versions") or config.get("versions") or {}
    lines = _model_lines(run_dir, recipe, metrics, config) + [
        "", "## Input and preprocessing", "",
        f"- Input: float32 tensor [batch, {recipe.image_size}, {recipe.image_size}, 3], channels "
        "last, RGB (grey images replicated to 3 channels).",
        _preprocessing_text(recipe),
        f"- Output: {_outputs_text(recipe)}.", "",
        "## Intended use", "",
        "- Research on transfer learning and reproduction of the benchmark; comparison of "
        "initializations; a starting point for further fine-tuning.",
        "- Out of scope: any clinical or patient-facing use; populations, scanners or "
        "acquisition protocols other than those of the training dataset without re-validation.",
        "", "## Export", "",
        f"- Format: {fmt} at `{os.path.abspath(output)}`",
        f"- Verified with {check['runtime']}: max |export - Keras| = {check['max_abs_diff']:.2e} "
        f"on {check['n_inputs']} random inputs of shape {check['input_shape']} "
        f"(tolerance {check['atol']:g}).",
        f"- Exported {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
        f"tfmedbench {tfmedbench.__version__}; training versions: "
        + (", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "not recorded"), "",
    ]  # fmt: skip
    path = model_card_path(output)
    atomic_write_text(path, "\n".join(lines))
    return path
